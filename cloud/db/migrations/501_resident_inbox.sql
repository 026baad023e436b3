-- Issue 18: residents' in-app inbox. A resident's message is an 'inbox' notification addressed to
-- the web account (user_id) rather than to a butler; no FK, like work_orders.reporter_user_id.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS user_id bigint;
CREATE INDEX IF NOT EXISTS notifications_resident_inbox ON notifications (user_id, id)
    WHERE channel = 'inbox' AND user_id IS NOT NULL;
