-- Users, roles and tenants (owned by the WEB/auth part; numbers 200-299).
-- A user has one role and belongs to one or more communities (tenants); admins see all.
-- token_version is copied into every token: bumping it revokes all tokens issued before.
CREATE TABLE IF NOT EXISTS users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL CHECK (username ~ '^[A-Za-z0-9][A-Za-z0-9_.@-]{1,63}$'),
    role          text NOT NULL CHECK (role IN ('admin', 'engineer', 'butler', 'resident')),
    password_hash text NOT NULL,
    display_name  text NOT NULL DEFAULT '',
    lang          text CHECK (lang IN ('zh', 'en')),
    phone         text,
    disabled      boolean NOT NULL DEFAULT false,
    token_version integer NOT NULL DEFAULT 0,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_login_at timestamptz
);
CREATE UNIQUE INDEX IF NOT EXISTS users_username_key ON users (lower(username));

-- community is the registry's community id (the same id as in the MQTT topics); no foreign key
-- on purpose: staff may be provisioned before a community's first gateway registers it.
CREATE TABLE IF NOT EXISTS user_communities (
    user_id   bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    community text NOT NULL,
    PRIMARY KEY (user_id, community)
);
CREATE INDEX IF NOT EXISTS user_communities_community ON user_communities (community);
