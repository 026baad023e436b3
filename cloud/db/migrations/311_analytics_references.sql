-- Healthy reference per device (issue 15): the baseline fitted on the device's first healthy weeks
-- (after installation, or after the last repair). A daily retrain replaces a device's baseline only
-- when the new training window still looks normal against this reference, so a fault that develops
-- slower than the retraining cadence (bearing wear at 0.5 %/day) cannot become the new "normal".
CREATE TABLE IF NOT EXISTS analytics_references (
    device_id     int NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    detector      text NOT NULL,
    params        jsonb NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    reason        text NOT NULL DEFAULT 'first',    -- 'first' | 'repair'
    PRIMARY KEY (device_id, detector)
);
