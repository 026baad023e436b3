-- Inspection rounds (巡检; owned by the INSPECTIONS part of ops, 400-419): routes of checkpoints,
-- each scanned (QR code) or entered on the butler's phone; a scan may carry a reading, a photo,
-- a note and a finding that opened a work order. Slots are computed, not stored: a route every
-- N hours has slots starting at local midnight + k*N h in the community's zone.

CREATE TABLE IF NOT EXISTS inspection_routes (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community    text NOT NULL,
    name         text NOT NULL,
    every_hours  integer NOT NULL CHECK (every_hours BETWEEN 1 AND 24 AND 24 % every_hours = 0),
    grace_minutes integer NOT NULL DEFAULT 30 CHECK (grace_minutes BETWEEN 0 AND 720),
    active       boolean NOT NULL DEFAULT true,
    created_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS inspection_routes_community ON inspection_routes (community) WHERE active;

CREATE TABLE IF NOT EXISTS inspection_checkpoints (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    route_id   bigint NOT NULL REFERENCES inspection_routes (id) ON DELETE CASCADE,
    code       text NOT NULL UNIQUE,          -- printed under the QR code, typed when the code is unreadable
    name       text NOT NULL,
    building   text,
    device     text,                          -- a device code when the checkpoint is a device
    position   integer NOT NULL DEFAULT 0,    -- order along the route
    reading_unit text NOT NULL DEFAULT ''     -- '' : no reading expected
);
CREATE INDEX IF NOT EXISTS inspection_checkpoints_route ON inspection_checkpoints (route_id, position);

CREATE TABLE IF NOT EXISTS inspection_scans (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    checkpoint_id  bigint NOT NULL REFERENCES inspection_checkpoints (id) ON DELETE CASCADE,
    actor          text NOT NULL,
    butler_id      bigint,
    at             timestamptz NOT NULL,
    method         text NOT NULL CHECK (method IN ('qr', 'code')),
    reading        double precision,
    photo          text,
    note           text NOT NULL DEFAULT '',
    work_order_id  bigint REFERENCES work_orders (id)
);
CREATE INDEX IF NOT EXISTS inspection_scans_checkpoint ON inspection_scans (checkpoint_id, at DESC);
