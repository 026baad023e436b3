-- State of the cloud-side (fleet) rule engine: its snapshot (learned baselines, active alarms)
-- and the last rollup hour it has consumed, so a restart neither forgets nor double-counts.
CREATE TABLE IF NOT EXISTS fleet_rule_state (
    name        text PRIMARY KEY,
    last_bucket timestamptz,
    snapshot    jsonb NOT NULL DEFAULT '{}',
    updated_at  timestamptz NOT NULL DEFAULT now()
);
