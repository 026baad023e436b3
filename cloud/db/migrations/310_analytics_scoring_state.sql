-- Stateful scoring (issue 15): detections are events of a fixed time grid (cloud/analytics/timeline.py),
-- applied idempotently. An episode is identified by (device, detector, detected_at): re-scoring the
-- same hours finds the same row, so a detection is recorded once whichever pass confirms it.
CREATE UNIQUE INDEX IF NOT EXISTS analytics_detections_episode
    ON analytics_detections (device_id, detector, detected_at);

-- The last hour scored per device and detector: the next pass resumes from the cell holding it,
-- so an outage of the service is caught up instead of skipped.
CREATE TABLE IF NOT EXISTS analytics_scoring_state (
    device_id     int NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    detector      text NOT NULL,
    scored_until  timestamptz NOT NULL,
    model_id      bigint REFERENCES analytics_models (id) ON DELETE SET NULL,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (device_id, detector)
);
