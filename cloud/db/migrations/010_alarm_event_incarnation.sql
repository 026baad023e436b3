-- The outbox incarnation of each alarm event's seq, so the alarm side orders events of one outbox by
-- their seq and never compares the counters of two (cloud/alarms/ordering.py). NULL: written before
-- this migration (the ordering falls back to "seq and time must both say older").
ALTER TABLE alarm_events ADD COLUMN IF NOT EXISTS incarnation text;
