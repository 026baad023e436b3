-- TimescaleDB: continuous aggregates (1 min from raw, 1 h hierarchical on 1 min), same columns
-- as the plain-PostgreSQL rollup tables so every read query works on both.
CREATE MATERIALIZED VIEW telemetry_1m WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(interval '1 minute', time) AS bucket, device_id, metric_id,
       avg(value) AS avg_value, min(value) AS min_value, max(value) AS max_value, count(value) AS n
FROM telemetry
GROUP BY 1, 2, 3
WITH NO DATA;

CREATE MATERIALIZED VIEW telemetry_1h WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT time_bucket(interval '1 hour', bucket) AS bucket, device_id, metric_id,
       sum(avg_value * n) / nullif(sum(n), 0) AS avg_value, min(min_value) AS min_value,
       max(max_value) AS max_value, sum(n)::bigint AS n
FROM telemetry_1m
GROUP BY 1, 2, 3
WITH NO DATA;

SELECT add_continuous_aggregate_policy('telemetry_1m', start_offset => interval '3 days',
       end_offset => interval '1 minute', schedule_interval => interval '30 seconds');
SELECT add_continuous_aggregate_policy('telemetry_1h', start_offset => interval '7 days',
       end_offset => interval '1 hour', schedule_interval => interval '5 minutes');
