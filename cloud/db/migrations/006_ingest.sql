-- Ingest bookkeeping: exactly-once by (gateway, seq), dead letters, raw alarms and events.

-- One row per committed sequenced message, inserted in the same transaction as its rows:
-- a redelivered message conflicts on the key and is skipped (counted as a duplicate).
CREATE TABLE ingest_batches (
    gateway_id  int NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    kind        text NOT NULL,
    items       int NOT NULL,
    points      int NOT NULL,
    sent_at     timestamptz,
    received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway_id, seq)
);
CREATE INDEX ingest_batches_received_idx ON ingest_batches (received_at);

-- Per gateway: high-water mark, count and the number of missing sequence numbers below it.
CREATE VIEW gateway_sequence AS
SELECT g.id AS gateway_id, c.code AS community, g.code AS gateway,
       max(b.seq) AS high_water, min(b.seq) AS low_water, count(b.seq) AS received,
       coalesce(max(b.seq) - min(b.seq) + 1 - count(b.seq), 0) AS gaps,
       max(b.received_at) AS last_received_at
FROM gateways g
JOIN communities c ON c.id = g.community_id
LEFT JOIN ingest_batches b ON b.gateway_id = g.id
GROUP BY g.id, c.code, g.code;

CREATE TABLE dead_letters (
    id              bigserial PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    topic           text NOT NULL,
    community       text,
    gateway         text,
    gateway_id      int REFERENCES gateways (id) ON DELETE SET NULL,
    reason          text NOT NULL,
    detail          text NOT NULL DEFAULT '',
    payload         bytea NOT NULL,
    payload_size    int NOT NULL
);
CREATE INDEX dead_letters_received_idx ON dead_letters (received_at DESC);
CREATE INDEX dead_letters_reason_idx ON dead_letters (reason, received_at DESC);

-- Raw alarm raise/clear messages from the edge, consumed by cloud.alarms (NOTIFY
-- 'guanjia_alarm_events' with the newest id is sent in the inserting transaction).
CREATE TABLE alarm_events (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    gateway_id  int NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    device_id   int REFERENCES devices (id) ON DELETE CASCADE,
    device_code text NOT NULL,
    rule        text NOT NULL,
    state       text NOT NULL CHECK (state IN ('raise', 'clear')),
    severity    text NOT NULL,
    ts          timestamptz NOT NULL,
    message     text NOT NULL DEFAULT '',
    value       double precision,
    value_text  text,
    work_order  boolean NOT NULL DEFAULT false,
    labels      jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX alarm_events_device_idx ON alarm_events (device_id, ts DESC);

CREATE TABLE device_events (
    id          bigserial PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT now(),
    gateway_id  int NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    seq         bigint NOT NULL,
    device_id   int REFERENCES devices (id) ON DELETE CASCADE,
    device_code text NOT NULL,
    type        text NOT NULL,
    ts          timestamptz NOT NULL,
    data        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX device_events_device_idx ON device_events (device_id, ts DESC);
