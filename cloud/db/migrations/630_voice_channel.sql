-- Issue 18: voice calls join the outbox channels (cloud.ops.delivery.voice), and a notification may be
-- 'skipped': a call whose order was accepted before it was due, or with no voice provider configured.
-- Re-runnable: drop, then add.
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_channel_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check
    CHECK (channel IN ('inbox', 'webhook', 'email', 'messenger', 'sms', 'voice'));
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_state_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_state_check
    CHECK (state IN ('pending', 'sent', 'failed', 'retrying', 'skipped'));
