-- Gateway enrolment with one-time bootstrap tokens, credential rotation and revocation (FLEET
-- part, 600-619; see cloud/registry/bootstrap.py). Only a token's SHA-256 is stored: the token
-- is shown once to the admin who issued it, like a password.
CREATE TABLE IF NOT EXISTS gateway_bootstrap_tokens (
    id          bigserial PRIMARY KEY,
    gateway_id  int NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    token_hash  bytea NOT NULL UNIQUE,
    created_by  text NOT NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,                 -- redeemed (single use)
    voided_at   timestamptz                  -- revoked before use (the gateway's credentials were revoked)
);
CREATE INDEX IF NOT EXISTS gateway_bootstrap_tokens_gateway_idx ON gateway_bootstrap_tokens (gateway_id);

ALTER TABLE gateways ADD COLUMN IF NOT EXISTS credentials_issued_at timestamptz;
ALTER TABLE gateways ADD COLUMN IF NOT EXISTS credentials_revoked_at timestamptz;
