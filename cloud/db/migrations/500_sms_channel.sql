-- Issue 18: SMS joins the outbox channels (cloud.ops.delivery.sms). Re-runnable: drop, then add.
ALTER TABLE notifications DROP CONSTRAINT IF EXISTS notifications_channel_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_channel_check
    CHECK (channel IN ('inbox', 'webhook', 'email', 'messenger', 'sms'));
