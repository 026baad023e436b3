-- Issue 19: a command is a write of a point or an action of the device profile (open a gate). For an
-- action, `point` holds the command's name and `value` is JSON null.
ALTER TABLE device_commands ADD COLUMN IF NOT EXISTS kind text NOT NULL DEFAULT 'write';
ALTER TABLE device_commands DROP CONSTRAINT IF EXISTS device_commands_kind_check;
ALTER TABLE device_commands ADD CONSTRAINT device_commands_kind_check CHECK (kind IN ('write', 'action'));
