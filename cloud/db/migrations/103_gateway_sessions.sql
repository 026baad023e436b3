-- The gateway uplink session count the alarm side last saw (owned by the WORKORDERS part; 102-109).
-- The edge reports it in every status message (health.uplink.sessions); when it changes, the
-- gateway reconnected — also after an outage too short for the last will or the heartbeat timeout
-- (a broker restart). changed_at NULL: first sight, not a reconnect. See docs/workorders.md.
CREATE TABLE IF NOT EXISTS gateway_sessions (
    community   text NOT NULL,
    gateway     text NOT NULL,
    sessions    bigint NOT NULL,
    changed_at  timestamptz,
    PRIMARY KEY (community, gateway)
);
