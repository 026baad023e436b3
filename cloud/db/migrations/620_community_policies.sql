-- Per-community service-level and notification policies (self-service admin, issue 19; 620-629).
-- The YAML policy (cloud/ops/model/policy.yaml or --policy FILE) stays the platform default; a row
-- here overrides, for one community, the clocks of the priorities it names and the notification
-- settings it names (cloud/ops/policies/repo.py reads and writes it, always with an admin_audit row).
CREATE TABLE IF NOT EXISTS community_policies (
    community   text PRIMARY KEY,
    -- {"P1": {"respond": 600, "on_site": 1800, "resolve": 14400, "escalate_every": 600}, ...} seconds
    sla         jsonb NOT NULL DEFAULT '{}'::jsonb,
    -- {"email": true, "messengers": true, "sms_escalation": true, "reminder_every": 1800}
    notify      jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at  timestamptz NOT NULL,
    updated_by  text NOT NULL
);
