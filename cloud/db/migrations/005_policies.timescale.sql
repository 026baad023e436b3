-- TimescaleDB: compression segmented by device (a chart reads one device's metrics together),
-- ordered by metric then time; retention as in storage_settings defaults.
ALTER TABLE telemetry SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id',
                           timescaledb.compress_orderby = 'metric_id, time DESC');
SELECT add_compression_policy('telemetry', interval '2 days');
SELECT add_retention_policy('telemetry', interval '90 days');
SELECT add_retention_policy('telemetry_text', interval '90 days');
SELECT add_retention_policy('telemetry_1m', interval '400 days');
