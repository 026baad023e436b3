-- Analytics (owned by the ANALYTICS part; 300-399): versioned models, per-device baselines,
-- detections and equipment health records. Model parameters are JSON (coefficients, thresholds,
-- seasonal tables) — a safe format: nothing here is ever unpickled or executed.

-- One row per trained version of a detector (fleet level: thresholds and hyper-parameters fitted
-- on a training fleet / window). At most one active version per detector.
CREATE TABLE IF NOT EXISTS analytics_models (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    detector      text NOT NULL,                 -- e.g. 'pump.current_residual'
    kind          text NOT NULL,                 -- device kind it applies to
    version       int NOT NULL,
    format        text NOT NULL DEFAULT 'json-v1',
    params        jsonb NOT NULL,
    metrics       jsonb NOT NULL DEFAULT '{}'::jsonb,   -- training/evaluation metrics
    window_start  timestamptz,
    window_end    timestamptz,
    source        text NOT NULL DEFAULT '',      -- 'db:<community>|*' or 'sim:seed=<n>'
    active        boolean NOT NULL DEFAULT false,
    trained_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (detector, version)
);
CREATE UNIQUE INDEX IF NOT EXISTS analytics_models_one_active ON analytics_models (detector) WHERE active;

-- Per-device baseline of a model version (e.g. the Huber coefficients of one pump, the
-- weekday x hour energy profile of one meter), fitted on that device's own training window.
CREATE TABLE IF NOT EXISTS analytics_baselines (
    model_id      bigint NOT NULL REFERENCES analytics_models (id) ON DELETE CASCADE,
    device_id     int NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    params        jsonb NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    samples       int NOT NULL DEFAULT 0,
    trained_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (model_id, device_id)
);
CREATE INDEX IF NOT EXISTS analytics_baselines_device ON analytics_baselines (device_id);

-- Detections: one open row per (device, detector); re-detection updates it. alarm_id links the
-- fleet alarm raised through the alarm / work-order path.
CREATE TABLE IF NOT EXISTS analytics_detections (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    device_id     int NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
    model_id      bigint REFERENCES analytics_models (id) ON DELETE SET NULL,
    detector      text NOT NULL,
    fault         text NOT NULL,
    onset_at      timestamptz NOT NULL,
    detected_at   timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    cleared_at    timestamptz,
    score         double precision NOT NULL DEFAULT 0,
    message       text NOT NULL DEFAULT '',
    evidence      jsonb NOT NULL DEFAULT '{}'::jsonb,
    alarm_id      bigint,
    open          boolean NOT NULL DEFAULT true
);
CREATE UNIQUE INDEX IF NOT EXISTS analytics_detections_one_open ON analytics_detections (device_id, detector) WHERE open;
CREATE INDEX IF NOT EXISTS analytics_detections_device ON analytics_detections (device_id, detected_at DESC);

-- The equipment health record: counters and derived figures over a window plus the 0-100 score
-- (formula in docs/analytics.md). One current row per device, refreshed by the scoring job.
CREATE TABLE IF NOT EXISTS device_health (
    device_id     int PRIMARY KEY REFERENCES devices (id) ON DELETE CASCADE,
    kind          text NOT NULL,
    window_start  timestamptz NOT NULL,
    window_end    timestamptz NOT NULL,
    record        jsonb NOT NULL,
    score         smallint NOT NULL CHECK (score BETWEEN 0 AND 100),
    deductions    jsonb NOT NULL DEFAULT '[]'::jsonb,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
