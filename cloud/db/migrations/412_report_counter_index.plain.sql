-- The manager reports' energy (reports, 410-419): counter increases per meter and hour are read from
-- the hourly rollup's min/max (cloud/ops/reports/repo.py energy_slots). With min_value and max_value
-- in the index the read is an index-only scan along (device, metric, bucket) — a month of a meter
-- is a few leaf pages instead of ~744 heap pages scattered in time order (rows are written hour by
-- hour for every device); measured: about 40 % less time per community report at 40 communities.
-- Costs one more index entry per rollup row (one per device, metric and hour). TimescaleDB keeps
-- telemetry_1h as a continuous aggregate with its own indexes; this file is the plain schema's.
CREATE INDEX IF NOT EXISTS telemetry_1h_counter ON telemetry_1h (device_id, metric_id, bucket)
    INCLUDE (min_value, max_value);
