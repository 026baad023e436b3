-- Issue 18: a volunteer asks to redeem points on their phone; staff approve (the ledger entry is
-- then written by cloud.ops.points.redemptions, never overdrawing) or refuse. The request is the
-- record of the ask; the ledger stays the record of the points.
CREATE TABLE IF NOT EXISTS points_redemptions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    butler_id   bigint NOT NULL REFERENCES butlers (id),
    community   text NOT NULL,
    points      integer NOT NULL CHECK (points > 0),
    service     text NOT NULL CHECK (service <> ''),
    state       text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'approved', 'refused')),
    created_at  timestamptz NOT NULL,
    decided_at  timestamptz,
    decided_by  text NOT NULL DEFAULT '',
    ledger_id   bigint REFERENCES points_ledger (id)
);
CREATE INDEX IF NOT EXISTS points_redemptions_of ON points_redemptions (butler_id, id);
CREATE INDEX IF NOT EXISTS points_redemptions_pending ON points_redemptions (community, id) WHERE state = 'pending';
