-- Issue 19: commands raised by rules (cloud.ops.automation). A rule's command names the alarm episode
-- that asked for it; the unique index is the loop guard: at most one command per alarm episode, also
-- when two cloud processes race for it.
ALTER TABLE device_commands ADD COLUMN IF NOT EXISTS alarm_id bigint REFERENCES alarms (id) ON DELETE SET NULL;
CREATE UNIQUE INDEX IF NOT EXISTS device_commands_alarm ON device_commands (alarm_id) WHERE alarm_id IS NOT NULL;
