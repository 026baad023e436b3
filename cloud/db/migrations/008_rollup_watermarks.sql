-- The last-value refresh reads every new invalidation once (watermark by id), while the
-- minute/hour rollups consume only invalidations of closed minutes: an open minute is
-- recomputed once when it closes instead of on every round (cloud.db.rollups).
CREATE TABLE rollup_watermarks (
    name    text PRIMARY KEY,
    last_id bigint NOT NULL DEFAULT 0
);
INSERT INTO rollup_watermarks (name, last_id) VALUES ('last_values', 0);
