-- Issue 18: each web account's chosen channel (residents and staff): where the steps of their
-- orders go besides the in-app inbox. 'inapp' = the inbox only. The target (a phone, an address,
-- a messenger URL) is validated by cloud.ops.notify.preferences when it is set.
ALTER TABLE users ADD COLUMN IF NOT EXISTS notify_channel text NOT NULL DEFAULT 'inapp';
ALTER TABLE users ADD COLUMN IF NOT EXISTS notify_target text;
ALTER TABLE users DROP CONSTRAINT IF EXISTS users_notify_channel_check;
ALTER TABLE users ADD CONSTRAINT users_notify_channel_check
    CHECK (notify_channel IN ('inapp', 'sms', 'email', 'messenger')
           AND (notify_channel = 'inapp' OR notify_target IS NOT NULL));
