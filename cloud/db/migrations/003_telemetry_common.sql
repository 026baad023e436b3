-- Shared by both storage modes: the read index, the last-value table, storage settings and the
-- invalidation log that drives incremental rollup refresh.

-- One index serves "series of one device/metric over a time range" (charts, rollup refresh per
-- device) and is what makes COPY cost more than a heap append; measured in docs/architecture.md.
CREATE INDEX telemetry_device_metric_time_idx ON telemetry (device_id, metric_id, time DESC);
CREATE INDEX telemetry_text_device_metric_time_idx ON telemetry_text (device_id, metric_id, time DESC);

-- Current state of every device: the newest value of each metric (maintained by the rollup
-- refresher from the invalidation log, off the ingest hot path).
CREATE TABLE telemetry_last (
    device_id   int NOT NULL,
    metric_id   smallint NOT NULL,
    time        timestamptz NOT NULL,
    value       double precision,
    value_text  text,
    quality     smallint NOT NULL DEFAULT 0,
    PRIMARY KEY (device_id, metric_id)
);

-- Knobs read by the maintenance components (editable at run time).
CREATE TABLE storage_settings (
    key     text PRIMARY KEY,
    value   text NOT NULL
);
INSERT INTO storage_settings (key, value) VALUES
    ('raw_retention_days', '90'),
    ('rollup_1m_retention_days', '400'),
    ('partitions_ahead_days', '3'),
    ('compress_after_days', '2');

-- Each committed ingest batch appends the time range it touched; the refresher consumes the
-- rows and recomputes exactly those buckets (the same idea as TimescaleDB's invalidation log).
CREATE TABLE rollup_invalidations (
    id      bigserial PRIMARY KEY,
    low     timestamptz NOT NULL,
    high    timestamptz NOT NULL
);
