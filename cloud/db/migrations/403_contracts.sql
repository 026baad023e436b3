-- Contracts of contractor companies (维保合同; ops, 400-419): per community and kind of work, the SLA
-- the company signed (e.g. lift entrapment: on site within 30 min), measured on the work orders
-- assigned to its field staff.
CREATE TABLE IF NOT EXISTS contractor_contracts (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    contractor_id  bigint NOT NULL REFERENCES contractors (id) ON DELETE CASCADE,
    community      text NOT NULL,
    skill          text NOT NULL,                        -- elevator | water | electrical | access | general
    on_site_within interval NOT NULL CHECK (on_site_within > interval '0'),
    resolve_within interval NOT NULL CHECK (resolve_within > interval '0'),
    starts_on      date NOT NULL,
    ends_on        date,
    created_at     timestamptz NOT NULL,
    UNIQUE (contractor_id, community, skill, starts_on)
);
