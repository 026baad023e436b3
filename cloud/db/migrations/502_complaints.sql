-- Issue 18: complaints (投诉), not only repairs. A complaint runs received → investigating →
-- handled → feedback (to the resident) → closed, under its grade's two commitments (handled by,
-- closed by; cloud/ops/model/policy.yaml complaint_grades); a missed one escalates up the chain.
CREATE TABLE IF NOT EXISTS complaints (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    community          text NOT NULL,
    grade              text NOT NULL,
    text               text NOT NULL,
    reporter_user_id   bigint,
    butler_id          bigint REFERENCES butlers (id),
    work_order_ids     bigint[] NOT NULL DEFAULT '{}',
    state              text NOT NULL CHECK (state IN ('received', 'investigating', 'handled', 'feedback', 'closed')),
    handle_due         timestamptz NOT NULL,
    close_due          timestamptz NOT NULL,
    escalation_level   integer NOT NULL DEFAULT 0,
    next_escalation_at timestamptz,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL,
    handled_at         timestamptz,
    closed_at          timestamptz
);
CREATE INDEX IF NOT EXISTS complaints_due ON complaints (next_escalation_at) WHERE state <> 'closed';
CREATE INDEX IF NOT EXISTS complaints_community ON complaints (community, created_at);

CREATE TABLE IF NOT EXISTS complaint_trail (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    complaint_id  bigint NOT NULL REFERENCES complaints (id),
    at            timestamptz NOT NULL,
    action        text NOT NULL,
    from_state    text,
    to_state      text,
    actor         text NOT NULL,
    actor_name    text NOT NULL DEFAULT '',
    note          text NOT NULL DEFAULT '',
    data          jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS complaint_trail_of ON complaint_trail (complaint_id, id);
