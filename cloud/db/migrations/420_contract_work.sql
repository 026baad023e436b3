-- Contracts say which kinds of work they cover (ops, contracts routing, 420-429): routing sends an
-- order of a contract's skill and kind of work to the contract holder's field staff while the
-- contract is valid (cloud/ops/routing/contracts.py).
--   maintenance: planned maintenance orders (origin 'planned'), e.g. a lift's half-monthly;
--   rescue:      emergencies (P0), e.g. lift entrapment: the butler is told first, the rescue is the holder's;
--   repair:      every other order of the skill.
ALTER TABLE contractor_contracts ADD COLUMN IF NOT EXISTS work text[] NOT NULL DEFAULT '{maintenance}';
ALTER TABLE contractor_contracts DROP CONSTRAINT IF EXISTS contractor_contracts_work_check;
ALTER TABLE contractor_contracts ADD CONSTRAINT contractor_contracts_work_check
    CHECK (work <@ ARRAY['maintenance', 'rescue', 'repair']::text[] AND cardinality(work) > 0);
ALTER TABLE contractor_contracts ADD COLUMN IF NOT EXISTS reference text NOT NULL DEFAULT '';
ALTER TABLE contractor_contracts DROP CONSTRAINT IF EXISTS contractor_contracts_validity_check;
ALTER TABLE contractor_contracts ADD CONSTRAINT contractor_contracts_validity_check
    CHECK (ends_on IS NULL OR ends_on >= starts_on);
CREATE INDEX IF NOT EXISTS contractor_contracts_route ON contractor_contracts (community, skill);
