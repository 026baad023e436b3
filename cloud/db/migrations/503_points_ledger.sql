-- Issue 18: the volunteers' points ledger (积分). Append-only: an entry is never edited or removed
-- (a correction is a new 'adjust' entry with its reason); the trigger makes that a database rule,
-- not a convention. The balance is the sum; redemption may not take it below zero.
CREATE TABLE IF NOT EXISTS points_ledger (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    butler_id      bigint NOT NULL REFERENCES butlers (id),
    community      text NOT NULL,
    kind           text NOT NULL CHECK (kind IN ('task', 'adjust', 'redeem')),
    delta          integer NOT NULL CHECK (delta <> 0),
    reason         text NOT NULL CHECK (reason <> ''),
    work_order_id  bigint REFERENCES work_orders (id),
    actor          text NOT NULL,
    actor_name     text NOT NULL DEFAULT '',
    created_at     timestamptz NOT NULL,
    UNIQUE (work_order_id, kind)
);
CREATE INDEX IF NOT EXISTS points_ledger_of ON points_ledger (butler_id, id);

CREATE OR REPLACE FUNCTION points_ledger_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'points_ledger is append-only: % refused', TG_OP USING ERRCODE = 'restrict_violation';
END $$;
DROP TRIGGER IF EXISTS points_ledger_append_only ON points_ledger;
CREATE TRIGGER points_ledger_append_only BEFORE UPDATE OR DELETE ON points_ledger
    FOR EACH ROW EXECUTE FUNCTION points_ledger_append_only();
