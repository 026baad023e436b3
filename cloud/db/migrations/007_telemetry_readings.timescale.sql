-- TimescaleDB: the same change (see the .plain variant). Continuous aggregates cannot unnest
-- arrays, so from here the 1 min / 1 h rollups are tables refreshed by the service in both
-- modes (cloud.db.rollups), with the same columns as before.
DROP MATERIALIZED VIEW IF EXISTS telemetry_1h;
DROP MATERIALIZED VIEW IF EXISTS telemetry_1m;

CREATE TABLE telemetry_readings (
    time        timestamptz NOT NULL,
    device_id   int NOT NULL,
    quality     smallint NOT NULL DEFAULT 0,
    metric_ids  smallint[] NOT NULL,
    vals        float8[] NOT NULL,
    qualities   smallint[]
);
SELECT create_hypertable('telemetry_readings', 'time', chunk_time_interval => interval '1 day');
CREATE INDEX telemetry_readings_device_time_idx ON telemetry_readings (device_id, time DESC);

INSERT INTO telemetry_readings (time, device_id, quality, metric_ids, vals, qualities)
SELECT time, device_id, min(quality), array_agg(metric_id ORDER BY metric_id),
       array_agg(coalesce(value, 'NaN') ORDER BY metric_id),
       CASE WHEN min(quality) <> max(quality) THEN array_agg(quality ORDER BY metric_id) END
FROM telemetry GROUP BY time, device_id;

DROP TABLE telemetry CASCADE;

CREATE VIEW telemetry AS
SELECT r.time, r.device_id, u.metric_id, nullif(u.value, 'NaN'::float8) AS value,
       coalesce(r.qualities[u.ord], r.quality) AS quality
FROM telemetry_readings r
CROSS JOIN LATERAL unnest(r.metric_ids, r.vals) WITH ORDINALITY AS u(metric_id, value, ord);

CREATE TABLE telemetry_1m (
    bucket timestamptz NOT NULL, device_id int NOT NULL, metric_id smallint NOT NULL,
    avg_value double precision, min_value double precision, max_value double precision, n bigint NOT NULL,
    PRIMARY KEY (device_id, metric_id, bucket)
);
CREATE INDEX telemetry_1m_bucket_idx ON telemetry_1m (bucket);
CREATE TABLE telemetry_1h (
    bucket timestamptz NOT NULL, device_id int NOT NULL, metric_id smallint NOT NULL,
    avg_value double precision, min_value double precision, max_value double precision, n bigint NOT NULL,
    PRIMARY KEY (device_id, metric_id, bucket)
);
CREATE INDEX telemetry_1h_bucket_idx ON telemetry_1h (bucket);

ALTER TABLE telemetry_readings SET (timescaledb.compress, timescaledb.compress_segmentby = 'device_id',
                                    timescaledb.compress_orderby = 'time DESC');
SELECT add_compression_policy('telemetry_readings', interval '2 days');
SELECT add_retention_policy('telemetry_readings', interval '90 days');
