-- Issue 18: a device may belong to a resident (an elderly resident's one-key call button): the orders
-- its alarms open are that resident's, who follows them in the inbox like a report of their own.
ALTER TABLE devices ADD COLUMN IF NOT EXISTS owner_user_id bigint REFERENCES users (id) ON DELETE SET NULL;
