-- TimescaleDB: hypertables with one-day chunks; compression/retention policies in 005.
CREATE TABLE telemetry (
    time        timestamptz NOT NULL,
    device_id   int NOT NULL,
    metric_id   smallint NOT NULL,
    value       double precision,
    quality     smallint NOT NULL DEFAULT 0
);
SELECT create_hypertable('telemetry', 'time', chunk_time_interval => interval '1 day');

CREATE TABLE telemetry_text (
    time        timestamptz NOT NULL,
    device_id   int NOT NULL,
    metric_id   smallint NOT NULL,
    value       text,
    quality     smallint NOT NULL DEFAULT 0
);
SELECT create_hypertable('telemetry_text', 'time', chunk_time_interval => interval '7 days');
