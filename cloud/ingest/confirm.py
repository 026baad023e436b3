"""Storage confirmations: after a commit, tell each gateway which of its seqs are now stored.

Why: a broker PUBACK is not proof of storage. Mosquitto PUBACKs a QoS 1 message to the edge and
then drops it when no subscriber is there (a ``$share`` subscription it did not restore after a
restart, a wiped persistence). So the edge keeps each batch until the cloud says it is stored
(the end-to-end argument), and this module decides which seqs a commit confirms; the message
itself is part of the wire contract (:func:`guanjia.core.wire.encode_stored`, docs/wire.md)::

    topic   guanjia/v1/{community}/{gateway}/cmd      (QoS 1, not retained)
    payload {"schema": 2, "kind": "stored", "incarnation": "9f86d081884c7d65",
             "seqs": [[first, last], ...], "ts": 1700000000000}

``seqs`` are inclusive ranges of one outbox incarnation, merged per gateway and incarnation per
commit (schema 1 messages are confirmed under ``"incarnation": "legacy"``, which such an edge
ignores). A seq is confirmed when it is new, a duplicate (the same content is already in
``ingest_batches``), a ``seq_conflict`` (kept whole in ``ingest_quarantine``) or dead-lettered
(the dead letter keeps the payload; resending would never help) — all are *stored* and *done*
for the edge. A message held as ``seq_out_of_window`` is not: it is not confirmed, so the edge
resends it.
"""

from __future__ import annotations

from collections.abc import Iterable

from cloud.ingest.prepare import Prepared
from guanjia.core.errors import WireError
from guanjia.core.wire import SEQUENCED_KINDS, encode_stored, parse_topic, peek_sequence, topic


def _sequence_of(p: Prepared) -> tuple[str, int | None]:
    """The message's incarnation and seq: from the decoded envelope, or (dead letters whose
    envelope did not decode) loosely from the payload, so a malformed batch is still confirmed and
    not resent forever."""
    if p.seq is not None or not p.dead:
        return p.incarnation, p.seq
    return peek_sequence(p.incoming.payload)


def confirmations(batch: Iterable[Prepared], now_ms: int) -> list[tuple[str, bytes]]:
    """``(topic, payload)`` of the ``stored`` messages for a committed batch (one per gateway and
    incarnation, split by :func:`guanjia.core.wire.encode_stored`), stamped ``now_ms`` (the worker's clock)."""
    per_gateway: dict[tuple[str, str, str], list[int]] = {}
    for p in batch:
        if p.held:
            continue
        try:
            parts = parse_topic(p.incoming.topic)
        except WireError:
            continue
        if parts.kind not in SEQUENCED_KINDS:
            continue
        incarnation, seq = _sequence_of(p)
        if seq is not None:
            per_gateway.setdefault((parts.community, parts.gateway, incarnation), []).append(seq)
    out: list[tuple[str, bytes]] = []
    for (community, gateway, incarnation), seqs in per_gateway.items():
        out.extend((topic(community, gateway, "cmd"), payload) for payload in encode_stored(incarnation, seqs, now_ms))
    return out
