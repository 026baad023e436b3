-- Sequence numbers per outbox incarnation, content digests, and the quarantine (issues 14 §4, 22).
--
-- A batch is identified by (gateway, incarnation, seq): an edge whose outbox was wiped starts a
-- new incarnation from seq 1 instead of colliding with the old numbers (which silently dropped
-- its data as duplicates). Rows stored before this migration belong to the 'legacy' incarnation,
-- which is also what schema 1 messages (older edges) are read as.
ALTER TABLE ingest_batches ADD COLUMN incarnation text NOT NULL DEFAULT 'legacy';
-- BLAKE2b-128 of the batch's items (guanjia.wire.content_digest); NULL for rows stored before
-- this migration (a redelivery of one of those is taken as a duplicate: nothing to compare).
ALTER TABLE ingest_batches ADD COLUMN digest bytea;
ALTER TABLE ingest_batches DROP CONSTRAINT ingest_batches_pkey;
ALTER TABLE ingest_batches ADD CONSTRAINT ingest_batches_pkey PRIMARY KEY (gateway_id, incarnation, seq);

-- Every incarnation a gateway has used: a new one is an event in the gateway's history (the
-- ingest writer raises an info alarm when the gateway already had another one), never a reason
-- to drop data.
CREATE TABLE gateway_incarnations (
    gateway_id    int NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    incarnation   text NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    first_seq     bigint NOT NULL,
    PRIMARY KEY (gateway_id, incarnation)
);
INSERT INTO gateway_incarnations (gateway_id, incarnation, first_seen_at, first_seq)
SELECT gateway_id, 'legacy', min(received_at), min(seq) FROM ingest_batches GROUP BY gateway_id;

-- Sequenced messages the cloud refused to trust, kept whole (the wire's 1 MiB limit) with the reason:
--   seq_conflict      same (gateway, incarnation, seq) as a stored batch, different content;
--                     both kept (the stored one in place, this one here), a security alarm raised
--   seq_out_of_window seq more than ingest.seq_window above the incarnation's high-water mark;
--                     not stored and not confirmed: the edge resends it, and it is taken once the
--                     incarnation's contiguous backlog has raised the high-water mark
-- One row per (gateway, incarnation, seq, digest, reason): a resend only bumps attempts.
CREATE TABLE ingest_quarantine (
    id            bigserial PRIMARY KEY,
    received_at   timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    attempts      int NOT NULL DEFAULT 1,
    gateway_id    int NOT NULL REFERENCES gateways (id) ON DELETE CASCADE,
    incarnation   text NOT NULL,
    seq           bigint NOT NULL,
    kind          text NOT NULL,
    reason        text NOT NULL CHECK (reason IN ('seq_conflict', 'seq_out_of_window')),
    detail        text NOT NULL DEFAULT '',
    digest        bytea NOT NULL,
    stored_digest bytea,
    high_water    bigint,
    topic         text NOT NULL,
    payload       bytea NOT NULL,
    UNIQUE (gateway_id, incarnation, seq, digest, reason)
);
CREATE INDEX ingest_quarantine_received_idx ON ingest_quarantine (received_at DESC);

-- Per gateway and incarnation: high-water mark, count and missing seqs below the high-water mark.
CREATE VIEW gateway_incarnation_sequence AS
SELECT b.gateway_id, b.incarnation, i.first_seen_at,
       max(b.seq) AS high_water, min(b.seq) AS low_water, count(*) AS received,
       max(b.seq) - min(b.seq) + 1 - count(*) AS gaps,
       max(b.received_at) AS last_received_at
FROM ingest_batches b
LEFT JOIN gateway_incarnations i ON i.gateway_id = b.gateway_id AND i.incarnation = b.incarnation
GROUP BY b.gateway_id, b.incarnation, i.first_seen_at;

-- Per gateway (same columns as before, gaps summed over incarnations, high-water mark of the
-- incarnation that sent last) plus the current incarnation and how many there were.
CREATE OR REPLACE VIEW gateway_sequence AS
SELECT g.id AS gateway_id, c.code AS community, g.code AS gateway,
       cur.high_water, cur.low_water, coalesce(agg.received, 0) AS received,
       coalesce(agg.gaps, 0) AS gaps, agg.last_received_at,
       cur.incarnation, coalesce(agg.incarnations, 0) AS incarnations
FROM gateways g
JOIN communities c ON c.id = g.community_id
LEFT JOIN LATERAL (
    SELECT sum(s.received)::bigint AS received, sum(s.gaps)::bigint AS gaps,
           max(s.last_received_at) AS last_received_at, count(*) AS incarnations
    FROM gateway_incarnation_sequence s WHERE s.gateway_id = g.id
) agg ON true
LEFT JOIN LATERAL (
    SELECT s.incarnation, s.high_water, s.low_water FROM gateway_incarnation_sequence s
    WHERE s.gateway_id = g.id ORDER BY s.last_received_at DESC LIMIT 1
) cur ON true;
