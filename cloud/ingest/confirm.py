"""Storage confirmations: after a commit, tell each gateway which of its seqs are now stored.

Why: a broker PUBACK is not proof of storage. Mosquitto PUBACKs a QoS 1 message to the edge and
then drops it when no subscriber is there (a ``$share`` subscription it did not restore after a
restart, a wiped persistence). So the edge keeps each batch until the cloud says it is stored
(the end-to-end argument), and this module builds that message::

    topic   guanjia/v1/{community}/{gateway}/cmd      (QoS 1, not retained)
    payload {"schema": 1, "kind": "stored", "seqs": [[first, last], ...], "ts": 1700000000000}

``seqs`` are inclusive ranges, merged per gateway per commit. A seq is confirmed when it is new,
a duplicate (already in ``ingest_batches``: an earlier copy was stored) or dead-lettered (the
dead letter keeps the payload; resending would never help) — all are *done* for the edge.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

import orjson

from cloud.ingest.prepare import Prepared
from guanjia.errors import WireError
from guanjia.wire import SCHEMA_VERSION, parse_topic, topic

SEQUENCED_KINDS: Final = ("telemetry", "alarms", "events")
MAX_RANGES_PER_MESSAGE: Final = 1000


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
    per_gateway: dict[tuple[str, str], list[int]] = {}
    for p in batch:
        try:
            parts = parse_topic(p.incoming.topic)
        except WireError:
            continue
        if parts.kind not in SEQUENCED_KINDS:
            continue
        seq = _seq_of(p)
        if seq is not None:
            per_gateway.setdefault((parts.community, parts.gateway), []).append(seq)
    ts = now_ms
    out: list[tuple[str, bytes]] = []
    for (community, gateway), seqs in per_gateway.items():
        ranges = merge(seqs)
        for start in range(0, len(ranges), MAX_RANGES_PER_MESSAGE):
            out.append((topic(community, gateway, "cmd"), orjson.dumps(
                {"schema": SCHEMA_VERSION, "kind": "stored",
                 "seqs": ranges[start:start + MAX_RANGES_PER_MESSAGE], "ts": ts})))
    return out
