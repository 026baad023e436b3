-- Alarm ordering key and inhibition (owned by the WORKORDERS part; 102-109). See docs/workorders.md
-- "Ordering" and "One incident, one ticket".

-- The ordering key of the last change applied to the alarm (together with last_event_ms, the edge's
-- event time): an event whose key is not newer changes nothing and goes to the trail as "late".
--   last_seq       the gateway outbox seq of that event (NULL: a source without one, or an older row)
--   last_seq_space '<gateway>#<outbox incarnation>': seqs only compare inside one space
ALTER TABLE alarms ADD COLUMN IF NOT EXISTS last_seq bigint;
ALTER TABLE alarms ADD COLUMN IF NOT EXISTS last_seq_space text;

-- Inhibition (as Alertmanager's): a device's communication alarm raised while its gateway is down or
-- reconnecting is recorded but grouped under the gateway's alarm (no order, no notification of its
-- own). `inhibited_by` stays as history once the alarm is promoted (inhibited = false).
ALTER TABLE alarms ADD COLUMN IF NOT EXISTS inhibited boolean NOT NULL DEFAULT false;
ALTER TABLE alarms ADD COLUMN IF NOT EXISTS inhibited_by bigint REFERENCES alarms (id);
-- A gateway alarm's order and notification wait until this time (the reconnect grace): a gateway
-- back before it opens nothing and notifies nobody.
ALTER TABLE alarms ADD COLUMN IF NOT EXISTS hold_until timestamptz;
-- When the alarm's raise was announced (webhook alarm.raised, order per policy); NULL while held or
-- inhibited, or for a row that only ever saw its clear. A clear is announced only after a raise was.
ALTER TABLE alarms ADD COLUMN IF NOT EXISTS announced_at timestamptz;
UPDATE alarms SET announced_at = raised_at WHERE announced_at IS NULL AND raise_count > 0 AND NOT inhibited;

CREATE INDEX IF NOT EXISTS alarms_inhibited ON alarms (inhibited_by) WHERE inhibited AND active AND current;
CREATE INDEX IF NOT EXISTS alarms_held ON alarms (hold_until) WHERE announced_at IS NULL AND hold_until IS NOT NULL;
