-- Web sessions ended by logout (issue 14 §5): a session cookie is a signed token that stays valid
-- until it expires (12 h), so logging out must be remembered server-side. One row per ended
-- session, kept until the token would have expired anyway; the auth layer refuses a cookie whose
-- jti is here and purges rows past expires_at at each logout.
CREATE TABLE IF NOT EXISTS revoked_sessions (
    jti         text PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL,
    revoked_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS revoked_sessions_expiry ON revoked_sessions (expires_at);
