-- Plain PostgreSQL: rollups are ordinary tables refreshed incrementally by the service
-- (cloud.db.rollups) from rollup_invalidations. Same columns as the TimescaleDB aggregates.
CREATE TABLE telemetry_1m (
    bucket      timestamptz NOT NULL,
    device_id   int NOT NULL,
    metric_id   smallint NOT NULL,
    avg_value   double precision,
    min_value   double precision,
    max_value   double precision,
    n           bigint NOT NULL,
    PRIMARY KEY (device_id, metric_id, bucket)
);
CREATE INDEX telemetry_1m_bucket_idx ON telemetry_1m (bucket);

CREATE TABLE telemetry_1h (
    bucket      timestamptz NOT NULL,
    device_id   int NOT NULL,
    metric_id   smallint NOT NULL,
    avg_value   double precision,
    min_value   double precision,
    max_value   double precision,
    n           bigint NOT NULL,
    PRIMARY KEY (device_id, metric_id, bucket)
);
CREATE INDEX telemetry_1h_bucket_idx ON telemetry_1h (bucket);
