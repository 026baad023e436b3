-- Registry: communities, buildings (with floors), gateways, devices, metric dictionary.
-- Int surrogate keys keep telemetry rows narrow; `code` columns are the ids used on the wire
-- (topic-safe, unique within their parent). Other migrations reference these tables by id.

CREATE TABLE communities (
    id          serial PRIMARY KEY,
    code        text NOT NULL UNIQUE,
    name        text NOT NULL DEFAULT '',
    timezone    text NOT NULL DEFAULT 'Asia/Shanghai',
    lat         double precision,
    lon         double precision,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE buildings (
    id              serial PRIMARY KEY,
    community_id    int NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    code            text NOT NULL,
    name            text NOT NULL DEFAULT '',
    floors          int NOT NULL DEFAULT 1 CHECK (floors >= 1 AND floors <= 200),
    basement_floors int NOT NULL DEFAULT 0 CHECK (basement_floors >= 0 AND basement_floors <= 20),
    lat             double precision CHECK (lat BETWEEN -90 AND 90),
    lon             double precision CHECK (lon BETWEEN -180 AND 180),
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, code)
);

CREATE TABLE gateways (
    id              serial PRIMARY KEY,
    community_id    int NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    code            text NOT NULL,
    name            text NOT NULL DEFAULT '',
    -- where the broker credentials live (username on the broker; the password is never stored)
    broker_username text,
    credentials_ref text,
    trusted         boolean NOT NULL DEFAULT false,
    -- policy for readings from devices the registry does not know: 'reject' (dead letter) or
    -- 'register' (create the device; only honoured when the gateway is trusted)
    auto_register   text NOT NULL DEFAULT 'reject' CHECK (auto_register IN ('reject', 'register')),
    online          boolean NOT NULL DEFAULT false,
    last_seen       timestamptz,
    status          jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, code)
);

CREATE TABLE devices (
    id              serial PRIMARY KEY,
    community_id    int NOT NULL REFERENCES communities (id) ON DELETE CASCADE,
    gateway_id      int REFERENCES gateways (id) ON DELETE SET NULL,
    building_id     int REFERENCES buildings (id) ON DELETE SET NULL,
    code            text NOT NULL,
    name            text NOT NULL DEFAULT '',
    kind            text NOT NULL DEFAULT 'unknown',
    profile_id      text,
    floor           int,
    lat             double precision CHECK (lat BETWEEN -90 AND 90),
    lon             double precision CHECK (lon BETWEEN -180 AND 180),
    auto_registered boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (community_id, code)
);
CREATE INDEX devices_gateway_idx ON devices (gateway_id);
CREATE INDEX devices_building_idx ON devices (building_id);

-- Metric names ("temperature", "door_open", …) → smallint, so a telemetry row stays 46 bytes.
CREATE TABLE metrics (
    id      smallserial PRIMARY KEY,
    name    text NOT NULL UNIQUE,
    unit    text
);
