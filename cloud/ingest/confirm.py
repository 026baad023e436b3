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
*confirmation window* (``GUANJIA_INGEST_CONFIRM_WINDOW_S``, default :data:`CONFIRM_WINDOW_S` = after
every commit; while behind at least :data:`BEHIND_WINDOW_S`): a commit after a quiet spell is
confirmed at once, the commits inside the window after a flush wait for the window's end and go
out together — one ``stored`` message per gateway per window (see :meth:`ConfirmQueue.due`). A
publish the MQTT client cannot take now (not connected, or its own outgoing window full) leaves
the seqs pending for the next flush instead of being refused and forgotten. When the pending set
reaches its bound the worker stops committing (so stops acking; the broker holds the stream)
until it drains: backpressure, not loss.

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

CONFIRM_WINDOW_S = 0.0
"""Default confirmation window: 0 = flush after every commit (while not behind).

Why not 0.2 s by default (measured, issue 21, bench bursts at load 5.6–9): under a burst a
worker commits batches of up to 500 messages about every 0.3 s, and each gateway's messages
reach a worker about as often, so one ``stored`` message per commit is already about one per
gateway per 0.3 s. A 0.2 s window merged little or nothing (msg40: 10,052–18,214 confirmations
per 20,000 messages with it, 13,875–15,918 without) and pushed commit→confirmation p50 from
107–150 to 219–330 ms and p99 from 310–590 ms to 0.9–1.7 s, past the 1 s target in two of three
runs. What does merge is a backlog — many commits in a row for the same gateway — which
:data:`BEHIND_WINDOW_S` covers."""

BEHIND_WINDOW_S = 0.25
"""The window while the worker is behind (whatever the setting says, at least this): under a
backlog a gateway's consecutive batches land in consecutive commits, and one message with merged
ranges per interval replaces one per commit, at the cost of this much confirmation latency."""

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

    def window(self, behind: bool) -> float:
        """The window now: the setting, and at least :data:`BEHIND_WINDOW_S` while behind."""
        return max(self.window_s, BEHIND_WINDOW_S) if behind else self.window_s

    def due(self, now: float, *, behind: bool = False) -> bool:
        """Whether a flush at monotonic time ``now`` should go ahead: something is pending and the
        last flush is at least :meth:`window` ago (or there was none). When it is, ``now``
        becomes the window's start. The caller passes the time (the worker's event-loop clock;
        tests pin it), so the window is a pure function of the calls."""
        if not self.size:
            return False
        if self.last_flush is not None and now - self.last_flush < self.window(behind):
            return False
        self.last_flush = now
        return True

    def next_due(self, now: float, *, behind: bool = False) -> float:
        """Seconds from ``now`` until a flush would be due (0 when it is, or nothing has been sent)."""
        if self.last_flush is None:
            return 0.0
        return max(0.0, self.last_flush + self.window(behind) - now)

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
