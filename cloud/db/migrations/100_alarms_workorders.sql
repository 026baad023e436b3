-- Alarms, work orders, butlers, routing, notifications (owned by the WORKORDERS part; 100-199).
-- Ids of communities, buildings, gateways and devices are the wire codes (text), so this schema
-- does not depend on the registry's surrogate keys and alarms from a gateway the registry does
-- not know yet are still recorded. Times are timestamptz computed by the application's clock
-- (tests drive a controllable clock), never now() inside business statements.

-- Butlers (管家) and staff: people who receive work. user_id points at users(id) of the web part
-- (migration 200 runs after this one, hence no foreign key here).
CREATE TABLE IF NOT EXISTS butlers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint UNIQUE,
    name        text NOT NULL,
    phone       text NOT NULL DEFAULT '',
    email       text NOT NULL DEFAULT '',
    community   text NOT NULL,
    buildings   text[] NOT NULL DEFAULT '{}',          -- empty: every building of the community
    skills      text[] NOT NULL DEFAULT '{}',          -- elevator | water | electrical | access | general
    kind        text NOT NULL DEFAULT 'full_time' CHECK (kind IN ('full_time', 'volunteer')),
    role        text NOT NULL DEFAULT 'butler' CHECK (role IN ('butler', 'team_lead', 'manager')),
    star_level  smallint NOT NULL DEFAULT 3 CHECK (star_level BETWEEN 1 AND 5),
    manager_id  bigint REFERENCES butlers (id),        -- next step of the escalation chain
    timezone    text NOT NULL DEFAULT 'Asia/Shanghai',
    messengers  text[] NOT NULL DEFAULT '{}',          -- apprise URLs (wxwork://, dingtalk://, feishu://…)
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS butlers_community ON butlers (community) WHERE active;

-- Weekly duty roster in the butler's own time zone; ends <= starts means the shift runs past midnight.
CREATE TABLE IF NOT EXISTS butler_shifts (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    butler_id  bigint NOT NULL REFERENCES butlers (id) ON DELETE CASCADE,
    weekday    smallint NOT NULL CHECK (weekday BETWEEN 0 AND 6),   -- 0 = Monday
    starts     time NOT NULL,
    ends       time NOT NULL
);
CREATE INDEX IF NOT EXISTS butler_shifts_butler ON butler_shifts (butler_id);

-- One row per alarm episode. Identity is (community, device, rule) (device codes are unique per community): at most one *current* row per identity
-- (partial unique index), so redelivered or concurrent events update it instead of inserting.
CREATE TABLE IF NOT EXISTS alarms (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community       text NOT NULL,
    gateway         text,
    device          text NOT NULL,
    rule            text NOT NULL,
    source          text NOT NULL CHECK (source IN ('edge', 'fleet', 'system')),
    severity        text NOT NULL,
    device_kind     text,
    building        text,
    active          boolean NOT NULL,
    acknowledged    boolean NOT NULL DEFAULT false,
    current         boolean NOT NULL DEFAULT true,
    message         text NOT NULL DEFAULT '',
    value           jsonb,
    labels          jsonb NOT NULL DEFAULT '{}',
    work_order      boolean NOT NULL DEFAULT false,
    raised_at       timestamptz NOT NULL,
    last_raised_at  timestamptz NOT NULL,
    cleared_at      timestamptz,
    acked_at        timestamptz,
    acked_by        text,
    raise_count     integer NOT NULL DEFAULT 1,
    flaps           integer NOT NULL DEFAULT 0,
    last_event_ms   bigint NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS alarms_identity ON alarms (community, device, rule) WHERE current;
CREATE INDEX IF NOT EXISTS alarms_community_active ON alarms (community, active, raised_at DESC);
CREATE INDEX IF NOT EXISTS alarms_raised ON alarms (raised_at DESC);

-- Every state change of an alarm: who, when, what.
CREATE TABLE IF NOT EXISTS alarm_trail (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    alarm_id  bigint NOT NULL REFERENCES alarms (id) ON DELETE CASCADE,
    at        timestamptz NOT NULL,
    action    text NOT NULL,       -- raised | updated | severity | cleared | reopened | acknowledged | archived
    actor     text NOT NULL,       -- 'edge:<gateway>', 'fleet', 'system', 'user:<id>'
    severity  text,
    note      text NOT NULL DEFAULT '',
    data      jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS alarm_trail_alarm ON alarm_trail (alarm_id, id);

CREATE TABLE IF NOT EXISTS work_orders (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community          text NOT NULL,
    building           text,
    device             text,
    device_kind        text,
    skill              text NOT NULL DEFAULT 'general',
    alarm_id           bigint REFERENCES alarms (id),
    origin             text NOT NULL CHECK (origin IN ('alarm', 'resident', 'staff')),
    title              text NOT NULL,
    description        text NOT NULL DEFAULT '',
    location           text NOT NULL DEFAULT '',
    photos             text[] NOT NULL DEFAULT '{}',
    reporter_name      text,
    reporter_phone     text,
    reporter_user_id   bigint,
    priority           text NOT NULL CHECK (priority IN ('P0', 'P1', 'P2', 'P3')),
    state              text NOT NULL CHECK (state IN ('new', 'assigned', 'accepted', 'on_the_way', 'on_site',
                                                      'on_hold', 'resolved', 'closed', 'rejected', 'cancelled')),
    assignee_id        bigint REFERENCES butlers (id),
    assigned_by        bigint REFERENCES butlers (id),
    auto_close         boolean NOT NULL DEFAULT false,
    escalation_level   smallint NOT NULL DEFAULT 0,
    next_escalation_at timestamptz,
    respond_due        timestamptz NOT NULL,
    on_site_due        timestamptz NOT NULL,
    resolve_due        timestamptz NOT NULL,
    accepted_at        timestamptz,
    on_site_at         timestamptz,
    resolved_at        timestamptz,
    closed_at          timestamptz,
    alarm_cleared_at   timestamptz,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);
-- one open work order per alarm: the database, not the caller, refuses a duplicate
CREATE UNIQUE INDEX IF NOT EXISTS work_orders_one_open_per_alarm ON work_orders (alarm_id)
    WHERE alarm_id IS NOT NULL AND state NOT IN ('closed', 'cancelled');
CREATE INDEX IF NOT EXISTS work_orders_community_state ON work_orders (community, state, created_at DESC);
CREATE INDEX IF NOT EXISTS work_orders_assignee_open ON work_orders (assignee_id)
    WHERE state NOT IN ('resolved', 'closed', 'cancelled');
CREATE INDEX IF NOT EXISTS work_orders_escalation ON work_orders (next_escalation_at)
    WHERE next_escalation_at IS NOT NULL;
CREATE INDEX IF NOT EXISTS work_orders_device_open ON work_orders (community, device)
    WHERE state NOT IN ('resolved', 'closed', 'cancelled');

CREATE TABLE IF NOT EXISTS work_order_trail (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    work_order_id  bigint NOT NULL REFERENCES work_orders (id) ON DELETE CASCADE,
    at             timestamptz NOT NULL,
    action         text NOT NULL,
    from_state     text,
    to_state       text,
    actor          text NOT NULL,
    actor_butler_id bigint,
    note           text NOT NULL DEFAULT '',
    lat            double precision CHECK (lat BETWEEN -90 AND 90),
    lon            double precision CHECK (lon BETWEEN -180 AND 180),
    data           jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS work_order_trail_wo ON work_order_trail (work_order_id, id);

-- 报事报修: every resident report is kept; it either opened its work order or was linked to one.
CREATE TABLE IF NOT EXISTS resident_reports (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community        text NOT NULL,
    building         text,
    device           text,
    text             text NOT NULL,
    location         text NOT NULL DEFAULT '',
    photos           text[] NOT NULL DEFAULT '{}',
    reporter_name    text NOT NULL DEFAULT '',
    reporter_phone   text NOT NULL DEFAULT '',
    reporter_user_id bigint,
    work_order_id    bigint NOT NULL REFERENCES work_orders (id),
    linked           boolean NOT NULL,
    created_at       timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS resident_reports_wo ON resident_reports (work_order_id);

CREATE TABLE IF NOT EXISTS work_order_ratings (
    work_order_id  bigint PRIMARY KEY REFERENCES work_orders (id),
    butler_id      bigint REFERENCES butlers (id),
    stars          smallint NOT NULL CHECK (stars BETWEEN 1 AND 5),
    comment        text NOT NULL DEFAULT '',
    rated_by       bigint,
    created_at     timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS work_order_ratings_butler ON work_order_ratings (butler_id, created_at);

-- A butler's performance, recomputed from ratings and SLA results (formula in docs/workorders.md).
CREATE TABLE IF NOT EXISTS butler_performance (
    butler_id        bigint PRIMARY KEY REFERENCES butlers (id) ON DELETE CASCADE,
    orders           integer NOT NULL,
    rated            integer NOT NULL,
    rating_mean      double precision,
    respond_ok_ratio double precision,
    on_site_ok_ratio double precision,
    score            double precision NOT NULL,
    star_level       smallint NOT NULL,
    computed_at      timestamptz NOT NULL
);

CREATE TABLE IF NOT EXISTS webhook_endpoints (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community  text,                                   -- NULL: every community
    url        text NOT NULL,
    secret     text NOT NULL,
    events     text[] NOT NULL DEFAULT '{}',           -- empty: every event
    active     boolean NOT NULL DEFAULT true
);

-- The notification outbox: rows are written in the same transaction as the change they announce,
-- then delivered (and retried) by the sender. dedup_key makes a re-run never notify twice.
CREATE TABLE IF NOT EXISTS notifications (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    channel          text NOT NULL CHECK (channel IN ('inbox', 'webhook', 'email', 'messenger')),
    butler_id        bigint REFERENCES butlers (id),
    target           text NOT NULL DEFAULT '',
    event            text NOT NULL,
    community        text,
    work_order_id    bigint REFERENCES work_orders (id),
    alarm_id         bigint REFERENCES alarms (id),
    subject          text NOT NULL DEFAULT '',
    body             text NOT NULL DEFAULT '',
    payload          jsonb NOT NULL DEFAULT '{}',
    state            text NOT NULL CHECK (state IN ('pending', 'sent', 'failed', 'retrying')),
    attempts         integer NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    last_error       text,
    dedup_key        text UNIQUE,
    created_at       timestamptz NOT NULL,
    sent_at          timestamptz
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (next_attempt_at)
    WHERE state IN ('pending', 'retrying');
CREATE INDEX IF NOT EXISTS notifications_inbox ON notifications (butler_id, id) WHERE channel = 'inbox';

-- Delivery log: one row per attempt.
CREATE TABLE IF NOT EXISTS notification_attempts (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    notification_id  bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    at               timestamptz NOT NULL,
    ok               boolean NOT NULL,
    status           integer,
    error            text,
    duration_ms      double precision NOT NULL
);
CREATE INDEX IF NOT EXISTS notification_attempts_n ON notification_attempts (notification_id);

-- Where the alarm processor is in ingest's alarm_events (updated in the same transaction as the
-- alarms it produced, so a restart neither loses nor re-applies events). The row lock also makes
-- several service processes take turns instead of racing.
CREATE TABLE IF NOT EXISTS alarm_event_cursor (
    name     text PRIMARY KEY,
    last_id  bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO alarm_event_cursor (name, last_id) VALUES ('alarms', 0) ON CONFLICT DO NOTHING;

-- alarm_events ids applied above the cursor (ids commit out of order across ingest workers, so a
-- bare high-water cursor could skip a late-committing lower id); pruned as the cursor advances.
CREATE TABLE IF NOT EXISTS alarm_events_applied (
    event_id bigint PRIMARY KEY
);
