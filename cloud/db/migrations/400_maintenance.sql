-- Planned maintenance (计划维保; owned by the MAINTENANCE part of ops, 400-419): plans, and one row
-- per planned work order with its checklist results and both confirmations. Codes (community,
-- building, device) are wire codes, as in 100_alarms_workorders.sql. Times come from the
-- application's clock, never now() in business statements.

-- A planned work order is a work order of origin 'planned' (routed, escalated and trailed like a repair).
ALTER TABLE work_orders DROP CONSTRAINT IF EXISTS work_orders_origin_check;
ALTER TABLE work_orders ADD CONSTRAINT work_orders_origin_check
    CHECK (origin IN ('alarm', 'resident', 'staff', 'planned', 'inspection'));

-- A plan applies one checklist template (cloud/ops/maintenance/templates.yaml or a site's file) to
-- one device, every device of the template's kind in a building, or in the whole community.
CREATE TABLE IF NOT EXISTS maintenance_plans (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community      text NOT NULL,
    scope          text NOT NULL CHECK (scope IN ('device', 'building', 'community')),
    target         text NOT NULL DEFAULT '',          -- device or building code; '' for the community
    template       text NOT NULL,                      -- template id, e.g. 'lift.half_monthly'
    starts_on      date NOT NULL,                      -- first due date of a device never maintained
    interval_days  integer CHECK (interval_days > 0),  -- NULL: the template's interval
    lead_days      integer CHECK (lead_days >= 0),     -- NULL: the template's lead
    condition_based boolean NOT NULL DEFAULT false,    -- 按需维保: stretch/shorten within the bounds
    assignee_id    bigint REFERENCES butlers (id),     -- NULL: routed like a repair
    active         boolean NOT NULL DEFAULT true,
    created_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS maintenance_plans_community ON maintenance_plans (community) WHERE active;

-- One row per planned order (the scheduler's memory: it survives restarts). At most one open
-- order per (plan, device) and one per (plan, device, due date): the database refuses duplicates.
CREATE TABLE IF NOT EXISTS maintenance_orders (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    plan_id          bigint NOT NULL REFERENCES maintenance_plans (id) ON DELETE CASCADE,
    work_order_id    bigint NOT NULL UNIQUE REFERENCES work_orders (id),
    community        text NOT NULL,
    device           text NOT NULL,
    device_kind      text NOT NULL,
    template         text NOT NULL,
    due_on           date NOT NULL,                    -- in the community's time zone
    due_at           timestamptz NOT NULL,             -- the end of due_on there
    interval_days    integer NOT NULL,                 -- the interval that set due_on
    interval_reason  text NOT NULL DEFAULT '',         -- why (fixed, run-based, condition-based)
    state            text NOT NULL DEFAULT 'open' CHECK (state IN ('open', 'submitted', 'completed', 'cancelled')),
    checklist        jsonb NOT NULL DEFAULT '[]',      -- per item: id, ok, value, photo, note
    maintainer       text,                             -- actor label of who did the work
    maintainer_signature text,                         -- data: URL of the signature drawn on the phone
    submitted_at     timestamptz,
    confirmed_by     text,                             -- actor label of the property staff
    staff_signature  text,
    completed_at     timestamptz,
    created_at       timestamptz NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS maintenance_orders_one_open ON maintenance_orders (plan_id, device)
    WHERE state IN ('open', 'submitted');
CREATE UNIQUE INDEX IF NOT EXISTS maintenance_orders_one_per_due ON maintenance_orders (plan_id, device, due_on)
    WHERE state <> 'cancelled';
CREATE INDEX IF NOT EXISTS maintenance_orders_done ON maintenance_orders (community, device, template, completed_at DESC)
    WHERE state = 'completed';
CREATE INDEX IF NOT EXISTS maintenance_orders_due ON maintenance_orders (due_at) WHERE state IN ('open', 'submitted');
