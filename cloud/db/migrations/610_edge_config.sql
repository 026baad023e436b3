-- Configuration rollout to the edge (issue 19, FLEET 610-619; see cloud/ops/fleet/configs.py).
-- Versions of each gateway's managed configuration (a bundle: devices.yaml, profiles/, rules/),
-- what each gateway reports it runs, and staged rollouts (canary -> percentage -> all).
CREATE TABLE IF NOT EXISTS edge_config_versions (
    gateway_id  int NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    version     text NOT NULL,                 -- digest of the files (guanjia.core.wire_config.bundle_version)
    files       jsonb NOT NULL,                -- file name -> text, as the edge unpacks them
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    note        text NOT NULL DEFAULT '',
    PRIMARY KEY (gateway_id, version)
);
CREATE INDEX IF NOT EXISTS edge_config_versions_created_idx ON edge_config_versions (gateway_id, created_at DESC);

-- the gateway's own word (status.health.config), kept as last reported
CREATE TABLE IF NOT EXISTS gateway_config_state (
    gateway_id  int PRIMARY KEY REFERENCES gateways (id) ON DELETE CASCADE,
    state       text NOT NULL,                 -- local | probation | good | rolled_back | refused
    running     text,
    good        text,
    attempted   text,
    push        text,
    reason      text,
    detail      text NOT NULL DEFAULT '',
    reported_at timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS config_rollouts (
    id          bigserial PRIMARY KEY,
    state       text NOT NULL CHECK (state IN ('running', 'halted', 'completed', 'aborted')),
    canary      int NOT NULL CHECK (canary >= 1),
    percent     int NOT NULL CHECK (percent BETWEEN 1 AND 100),
    probation_s double precision,              -- NULL: each gateway's own window
    note        text NOT NULL DEFAULT '',
    halt_reason text NOT NULL DEFAULT '',
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS config_rollouts_running_idx ON config_rollouts (id) WHERE state = 'running';

CREATE TABLE IF NOT EXISTS config_rollout_targets (
    rollout_id  bigint NOT NULL REFERENCES config_rollouts (id) ON DELETE CASCADE,
    gateway_id  int NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    position    int NOT NULL,
    stage       int NOT NULL,                  -- 0 canary, 1 percentage, 2 all
    version     text NOT NULL,
    push_id     text NOT NULL UNIQUE,
    state       text NOT NULL DEFAULT 'waiting'
                CHECK (state IN ('waiting', 'sent', 'applied', 'failed', 'skipped')),
    reason      text,
    detail      text NOT NULL DEFAULT '',
    sent_at     timestamptz,
    done_at     timestamptz,
    PRIMARY KEY (rollout_id, gateway_id),
    FOREIGN KEY (gateway_id, version) REFERENCES edge_config_versions (gateway_id, version)
);
