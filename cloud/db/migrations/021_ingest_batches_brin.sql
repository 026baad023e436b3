-- Issue 21: ingest_batches.received_at gets a BRIN index instead of a B-tree.
--
-- Why: every committed message inserts one ingest_batches row, and each B-tree on the table is one
-- more index insertion (and WAL record) per message on the ingest's hot path. received_at is only
-- searched by the retention DELETE in cloud/db/maintenance.py (received_at < cutoff), and it grows
-- with insertion order (the commit's now()), which is exactly what a BRIN index summarises: a few
-- pages per thousands of heap pages, updated only when a block range's bounds move. The primary
-- key (gateway_id, incarnation, seq) — the dedupe — is unchanged.
DROP INDEX IF EXISTS ingest_batches_received_idx;
CREATE INDEX ingest_batches_received_brin ON ingest_batches USING brin (received_at);
