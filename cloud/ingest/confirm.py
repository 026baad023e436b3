"""Storage confirmations: after a commit, tell each gateway which of its seqs are now stored.

Why: a broker PUBACK is not proof of storage. Mosquitto PUBACKs a QoS 1 message to the edge and
then drops it when no subscriber is there (a ``$share`` subscription it did not restore after a
restart, a wiped persistence). So the edge keeps each batch until the cloud says it is stored
(the end-to-end argument), and this module builds that message::

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
from typing import Final

import orjson

from cloud.ingest.prepare import Prepared
from guanjia.core.errors import WireError
from guanjia.core.wire import LEGACY_INCARNATION, SCHEMA_VERSION, parse_topic, topic, valid_incarnation

SEQUENCED_KINDS: Final = ("telemetry", "alarms", "events")
MAX_RANGES_PER_MESSAGE: Final = 1000


def _incarnation_of(p: Prepared) -> str:
    """The message's incarnation: decoded, or loosely from a payload that did not decode."""
    if p.seq is not None or not p.dead:
        return p.incarnation
    try:
        doc = orjson.loads(p.incoming.payload)
    except orjson.JSONDecodeError:
        return LEGACY_INCARNATION
    value = doc.get("incarnation") if isinstance(doc, dict) and doc.get("schema") != 1 else None
    return value if isinstance(value, str) and valid_incarnation(value) else LEGACY_INCARNATION


def _seq_of(p: Prepared) -> int | None:
    """The message's seq: from the decoded envelope, or (dead letters whose envelope did not
    decode) loosely from the payload, so a malformed batch is still confirmed and not resent forever."""
    if p.seq is not None:
        return p.seq
    if not p.dead:
        return None
    try:
        doc = orjson.loads(p.incoming.payload)
    except orjson.JSONDecodeError:
        return None
    seq = doc.get("seq") if isinstance(doc, dict) else None
    return seq if type(seq) is int and 1 <= seq < 2**62 else None


def merge(seqs: Iterable[int]) -> list[list[int]]:
    """Sorted inclusive ranges covering ``seqs``."""
    ranges: list[list[int]] = []
    for seq in sorted(set(seqs)):
        if ranges and seq == ranges[-1][1] + 1:
            ranges[-1][1] = seq
        else:
            ranges.append([seq, seq])
    return ranges


def confirmations(batch: Iterable[Prepared], now_ms: int) -> list[tuple[str, bytes]]:
    """``(topic, payload)`` of the ``stored`` messages for a committed batch (one per gateway,
    split every :data:`MAX_RANGES_PER_MESSAGE` ranges), stamped ``now_ms`` (the worker's clock)."""
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
        seq = _seq_of(p)
        if seq is not None:
            per_gateway.setdefault((parts.community, parts.gateway, _incarnation_of(p)), []).append(seq)
    ts = now_ms
    out: list[tuple[str, bytes]] = []
    for (community, gateway, incarnation), seqs in per_gateway.items():
        ranges = merge(seqs)
        for start in range(0, len(ranges), MAX_RANGES_PER_MESSAGE):
            out.append((topic(community, gateway, "cmd"), orjson.dumps(
                {"schema": SCHEMA_VERSION, "kind": "stored", "incarnation": incarnation,
                 "seqs": ranges[start:start + MAX_RANGES_PER_MESSAGE], "ts": ts})))
    return out
