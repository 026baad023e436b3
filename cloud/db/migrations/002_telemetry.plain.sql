-- Plain PostgreSQL: declarative range partitions by day, created ahead by the service
-- (cloud.db.partitions) and on demand by the ingest writer; retention drops whole partitions.
CREATE TABLE telemetry (
    time        timestamptz NOT NULL,
    device_id   int NOT NULL,
    metric_id   smallint NOT NULL,
    value       double precision,
    quality     smallint NOT NULL DEFAULT 0
) PARTITION BY RANGE (time);

CREATE TABLE telemetry_text (
    time        timestamptz NOT NULL,
    device_id   int NOT NULL,
    metric_id   smallint NOT NULL,
    value       text,
    quality     smallint NOT NULL DEFAULT 0
) PARTITION BY RANGE (time);
