-- The admin audit log (FLEET part, 600-619; see cloud/db/audit.py): who changed what in the
-- platform's administration, readable by admins. Remote commands have their own trail
-- (device_commands, 600); this one holds the rest (gateway enrolment, credentials, …).
CREATE TABLE IF NOT EXISTS admin_audit (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,              -- username, or "gateway:<broker username>" for an enrolling box
    action      text NOT NULL,              -- gateway.token_issued, gateway.enrolled, gateway.revoked, …
    community   text,
    target      text NOT NULL,              -- what was changed: "gateway <community>/<code>", …
    detail      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX IF NOT EXISTS admin_audit_at_idx ON admin_audit (at DESC);
