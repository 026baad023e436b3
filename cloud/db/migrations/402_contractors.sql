-- Contractors (维保单位 / 供应商; owned by ops, 400-419): companies whose users (role 'contractor')
-- see and act only on the work orders assigned to their own field staff, in their communities.
-- A contractor's field staff are butler records with contractor_id set: they can be a plan's
-- assignee and move orders like a butler, but automatic routing never picks them (it routes the
-- property's own butlers; a plan or a person hands work to the contract holder explicitly).
CREATE TABLE IF NOT EXISTS contractors (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL,
    skills      text[] NOT NULL DEFAULT '{}',
    created_at  timestamptz NOT NULL
);

ALTER TABLE users DROP CONSTRAINT IF EXISTS users_role_check;
ALTER TABLE users ADD CONSTRAINT users_role_check
    CHECK (role IN ('admin', 'engineer', 'butler', 'resident', 'contractor'));
ALTER TABLE users ADD COLUMN IF NOT EXISTS contractor_id bigint REFERENCES contractors (id);
ALTER TABLE butlers ADD COLUMN IF NOT EXISTS contractor_id bigint REFERENCES contractors (id);
CREATE INDEX IF NOT EXISTS butlers_contractor ON butlers (contractor_id) WHERE contractor_id IS NOT NULL;
