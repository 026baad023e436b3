-- Remote commands to devices (owned by the FLEET part of ops; migrations 600-619). See
-- cloud/ops/fleet/__init__.py. One row per command an engineer (or a rule) asked for, refused in
-- the cloud included: the table is the audit trail (who, when, what, result) as well as the
-- queue of the dispatcher. Codes, not ids, for community/gateway/device: the trail outlives a
-- device that is deleted or moved to another gateway.
CREATE TABLE IF NOT EXISTS device_commands (
    id           bigserial PRIMARY KEY,
    command_id   text NOT NULL UNIQUE,          -- the id on the wire (cmd / cmd/reply)
    community    text NOT NULL,
    gateway      text,                          -- NULL only for a command refused in the cloud
    device_id    int REFERENCES devices (id) ON DELETE SET NULL,
    device       text NOT NULL,
    point        text NOT NULL,
    value        jsonb NOT NULL,
    issued_by    text NOT NULL,                 -- username, or "rule:<id>"
    status       text NOT NULL CHECK (status IN
                     ('rejected', 'pending', 'sent', 'done', 'refused', 'timed_out', 'expired')),
    reason       text,                          -- refusal / failure code (the edge's reason codes)
    detail       text NOT NULL DEFAULT '',
    created_at   timestamptz NOT NULL,
    expires_at   timestamptz NOT NULL,          -- not sent after this; the edge refuses it after this too
    sent_at      timestamptz,
    finished_at  timestamptz,                   -- reply, timeout, expiry or rejection
    late_reply   boolean NOT NULL DEFAULT false -- a reply that came after the cloud gave up (timed_out)
);
CREATE INDEX IF NOT EXISTS device_commands_open_idx ON device_commands (status) WHERE status IN ('pending', 'sent');
CREATE INDEX IF NOT EXISTS device_commands_device_idx ON device_commands (device_id, created_at DESC);
