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

Never dropped (issue 21): a commit's seqs go into :class:`ConfirmQueue`, a bounded pending set per
gateway and incarnation, coalesced into ranges when sent. The worker flushes it at most once per
*confirmation window* (:data:`CONFIRM_WINDOW_S`, ``GUANJIA_INGEST_CONFIRM_WINDOW_S``): a commit
right after a quiet spell is confirmed at once, the commits inside the window after a flush wait
for the window's end and go out together — one ``stored`` message per gateway per window instead
of one per commit (see :meth:`ConfirmQueue.due`); a publish the MQTT client cannot take now (not connected, or its own
outgoing window full) leaves the seqs pending for the next flush instead of being refused and
forgotten. When the pending set reaches its bound the worker stops committing (so stops acking;
the broker holds the stream) until it drains: backpressure, not loss.

``behind``: when the worker is behind (its inbox full, confirmations pending, or a batch old at
commit), the ``stored`` message says so, and the edge restarts its resend timers instead of
resending what is merely queued (:meth:`edge.outbox.Outbox.postpone`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from cloud.ingest.prepare import Prepared, topic_parts
from guanjia.core.errors import WireError
from guanjia.core.wire import (
    MAX_RANGES_PER_MESSAGE,
    SEQUENCED_KINDS,
    encode_stored,
    merge_seqs,
    peek_sequence,
    topic,
)


def _sequence_of(p: Prepared) -> tuple[str, int | None]:
    """The message's incarnation and seq: from the decoded envelope, or (dead letters whose
    envelope did not decode) loosely from the payload, so a malformed batch is still confirmed and
    not resent forever."""
    if p.seq is not None or not p.dead:
        return p.incarnation, p.seq
    return peek_sequence(p.incoming.payload)


GatewayKey = tuple[str, str, str]
"""(community, gateway, incarnation): one confirmation stream."""


def confirmable(batch: Iterable[Prepared]) -> dict[GatewayKey, list[int]]:
    """The seqs a committed batch confirms, per gateway and incarnation (held ones are not)."""
    per_gateway: dict[GatewayKey, list[int]] = {}
    for p in batch:
        if p.held:
            continue
        try:
            parts = topic_parts(p.incoming.topic)
        except WireError:
            continue
        if parts.kind not in SEQUENCED_KINDS:
            continue
        incarnation, seq = _sequence_of(p)
        if seq is not None:
            per_gateway.setdefault((parts.community, parts.gateway, incarnation), []).append(seq)
    return per_gateway


def confirmations(batch: Iterable[Prepared], now_ms: int, *, behind: bool = False) -> list[tuple[str, bytes]]:
    """``(topic, payload)`` of the ``stored`` messages for a committed batch (one per gateway and
    incarnation, split by :func:`guanjia.core.wire.encode_stored`), stamped ``now_ms`` (the worker's clock)."""
    out: list[tuple[str, bytes]] = []
    for (community, gateway, incarnation), seqs in confirmable(batch).items():
        out.extend((topic(community, gateway, "cmd"), payload)
                   for payload in encode_stored(incarnation, seqs, now_ms, behind=behind))
    return out


class Sent(Enum):
    """What the MQTT client did with one confirmation."""

    QUEUED = "queued"
    FULL = "full"
    """Its outgoing window is full: try again after some PUBACKs."""
    DOWN = "down"
    """Not connected: try again after the reconnect."""


Publish = Callable[[str, bytes], Sent]

CONFIRM_WINDOW_S = 0.2
"""Default confirmation window: pending confirmations are flushed at most this often.

Why 0.2 s: under load each worker commits every ~50–100 ms and a busy gateway (20 batches/s)
has a batch in most commits, so one ``stored`` message per commit was one PUBLISH per message —
encoded by the worker, received, routed and sent by the broker, and parsed by the gateway:
measured (issue 21, 500 × 10 × 4 burst) ~1 confirmation per 1.2 messages at a 0.25 s window
applied only while behind. A window of a few commits cuts that several-fold and costs at most
the window in confirmation latency (target: p99 ≤ 1 s after commit; the edge resends after
30 s), and a quiet gateway's single batch is still confirmed right after its commit."""

MAX_PENDING_SEQS = 200_000
"""Bound of :class:`ConfirmQueue` (seqs, all gateways): at 1 batch/s per gateway this is minutes of
a 1,000-gateway fleet's confirmations, far beyond any broker hiccup; past it the worker waits."""


@dataclass(slots=True)
class ConfirmQueue:
    """Seqs committed and not yet handed to the MQTT client, per gateway and incarnation.

    Why a set per gateway instead of one message per commit: under a backlog the same gateway
    is confirmed by many commits in a row, and one ``stored`` message with merged ranges replaces
    all of them. Insertion order is kept, so the gateway waiting longest goes first."""

    max_pending: int = MAX_PENDING_SEQS
    pending: dict[GatewayKey, set[int]] = field(default_factory=dict)
    size: int = 0
    sent: int = 0
    """``stored`` messages handed to the client."""
    deferred: int = 0
    """Flushes that stopped early because the client could not take more (FULL or DOWN)."""
    stalled: bool = False
    """The last flush left confirmations pending (part of the ``behind`` hint)."""
    window_s: float = CONFIRM_WINDOW_S
    """At most one flush per this many seconds (:meth:`due`)."""
    last_flush: float | None = None
    """Monotonic time of the last flush that was due (``None``: never)."""

    def due(self, now: float) -> bool:
        """Whether a flush at monotonic time ``now`` should go ahead: something is pending and the
        last flush is at least :attr:`window_s` ago (or there was none). When it is, ``now``
        becomes the window's start. The caller passes the time (the worker's event-loop clock;
        tests pin it), so the window is a pure function of the calls."""
        if not self.size:
            return False
        if self.last_flush is not None and now - self.last_flush < self.window_s:
            return False
        self.last_flush = now
        return True

    def next_due(self, now: float) -> float:
        """Seconds from ``now`` until a flush would be due (0 when it is, or nothing has been sent)."""
        if self.last_flush is None:
            return 0.0
        return max(0.0, self.last_flush + self.window_s - now)

    def add(self, batch: Iterable[Prepared]) -> int:
        """Queue the seqs a committed batch confirms; returns how many."""
        added = 0
        for key, seqs in confirmable(batch).items():
            have = self.pending.get(key)
            if have is None:
                have = self.pending[key] = set()
            before = len(have)
            have.update(seqs)
            added += len(have) - before
        self.size += added
        return added

    @property
    def full(self) -> bool:
        return self.size >= self.max_pending

    def flush(self, publish: Publish, now_ms: int, *, behind: bool = False) -> Sent:
        """Hand every pending confirmation to ``publish``, oldest gateway first, until it says
        FULL or DOWN (the rest stays pending). Returns the last outcome."""
        outcome = Sent.QUEUED
        for key in list(self.pending):
            community, gateway, incarnation = key
            seqs = self.pending[key]
            payloads = encode_stored(incarnation, seqs, now_ms, behind=behind)
            cmd = topic(community, gateway, "cmd")
            for i, payload in enumerate(payloads):
                outcome = publish(cmd, payload)
                if outcome is not Sent.QUEUED:
                    if i:  # the ranges already queued are done; keep the rest
                        left = {s for lo, hi in merge_seqs(seqs)[i * MAX_RANGES_PER_MESSAGE:]
                                for s in range(lo, hi + 1)}
                        self.size -= len(seqs) - len(left)
                        self.pending[key] = left
                    self.deferred += 1
                    self.stalled = True
                    return outcome
                self.sent += 1
            del self.pending[key]
            self.size -= len(seqs)
        self.stalled = False
        return outcome
