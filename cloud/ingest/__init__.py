"""MQTT → PostgreSQL ingest: shared-subscription consumers, validation, binary COPY, exactly once.

Pipeline of one worker (:class:`cloud.ingest.worker.IngestWorker`)::

    MQTT protocol (data_received, every packet of a chunk) ──▶ inbox ──▶ batcher (decode, policy, encode COPY)
        ▲                                                   │
        └──── ack(mid) after commit ◀── writer (one transaction: dedupe, COPY, alarms, commit)

Pieces: :mod:`.consumer` (MQTT v5 session, acks after commit, receive-maximum) on :mod:`.mqtt`
(asyncio connection) and :mod:`.packets` (the packet codec), :mod:`.decode` (wire →
columnar arrays), :mod:`.copy` (numpy-built binary COPY), :mod:`.registry_cache` (device/metric
ids, auto-registration), :mod:`.writer` (the transaction), :mod:`.hooks` (after-commit callbacks).
"""
