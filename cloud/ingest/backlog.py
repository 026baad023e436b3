"""How far behind the broker's backlog is, and the retained ``behind`` status that tells the edges.

The problem (issue 21): the ``behind`` hint of a ``stored`` confirmation reaches only an edge with a
committed batch. In a burst, an edge whose batches all wait in the broker's queue (behind the
worker's Receive Maximum) hears nothing for 30 s and resends: 191 of 600 batches in one
60,000-message run. So each worker also publishes a retained status on
``guanjia/v1/_cloud/ingest/{worker}/behind`` (:func:`guanjia.core.wire.ingest_status_topic`) that
every edge reads (docs/wire.md).

How the worker knows the backlog that sits at the broker — decided: **the queueing delay of the
messages it commits**, i.e. cloud receive time minus the edge's ``sent_at``, minus that gateway's
own baseline. The alternatives: the in-process queue is bounded by Receive Maximum and shows
nothing of the broker's queue; Mosquitto's ``$SYS`` counters count stored messages of every client
and topic (retained ones, other sessions), not this share group's queue, and are broker-specific.
A message published now by the edge and received now has a delay of (network + the edge's clock
skew); the same gateway's message received after waiting behind a backlog has that plus the wait.
The baseline — the smallest delay seen from the gateway (:class:`BacklogEstimate`) — takes the
skew out, so an edge whose clock is minutes off does not make the cloud look behind. The median
over a batch makes one gateway whose clock jumped back (its delay grows until the baseline ages
out, :data:`BASELINE_ROTATE_S`) unable to raise the flag on its own. A resent batch carries a new
``sent_at``, so resends do not inflate it. Blind spots: a gateway first seen inside a backlog gets
a too-high baseline (its delay reads ~0 until the baseline rotates), and a burst of only such
gateways is not seen — the worker then also says behind when it holds messages it cannot commit
(:meth:`BehindStatus.tick`'s ``stalled``), e.g. the database is down.

:class:`BehindStatus` turns the estimate into messages: behind when the lag reaches
``threshold_s`` (``GUANJIA_INGEST_BEHIND_LAG_S``), refreshed every :data:`STATUS_REFRESH_S` with
MQTT v5 message expiry ``expiry_s`` (``GUANJIA_INGEST_BEHIND_EXPIRY_S``) so a dead worker's status
disappears from the broker and the edges stop holding, cleared (empty retained payload) once the
lag falls under half the threshold (hysteresis: no flapping at the edge of the threshold).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from guanjia.core.wire import encode_ingest_behind

BASELINE_ROTATE_S = 600.0
"""A gateway's baseline is the minimum over the current and the previous period of this length:
an edge clock corrected backwards stops counting as lag after at most two periods."""
STATUS_REFRESH_S = 2.0
"""How often a worker re-evaluates and, while behind, republishes its status."""
BACKLOG_BEHIND_S = 5.0
"""Default ``GUANJIA_INGEST_BEHIND_LAG_S``: broker-side queueing delay that makes a worker behind
(an edge resends after 30 s, so the status must be up well before that)."""
BEHIND_EXPIRY_S = 20.0
"""Default ``GUANJIA_INGEST_BEHIND_EXPIRY_S``: message expiry of the status (several refreshes)."""


class BacklogEstimate:
    """Per-gateway skew baselines and the broker-side queueing delay of committed messages."""

    def __init__(self) -> None:
        self._current: dict[int, int] = {}
        self._previous: dict[int, int] = {}
        self._rotated_ms: int | None = None
        self.lag_s = 0.0
        """The median queueing delay (s) of the last observed batch."""

    def observe(self, messages: Iterable[tuple[int | None, int | None, int]], now_ms: int) -> float:
        """``(gateway_id, sent_at_ms, received_ms)`` of a committed batch; returns (and keeps in
        :attr:`lag_s`) the batch's median delay above each gateway's baseline."""
        if self._rotated_ms is None:
            self._rotated_ms = now_ms
        elif now_ms - self._rotated_ms >= BASELINE_ROTATE_S * 1000:
            self._previous, self._current, self._rotated_ms = self._current, {}, now_ms
        current, previous = self._current, self._previous
        delays: list[int] = []
        for gateway, sent_at, received in messages:
            if gateway is None or sent_at is None:
                continue
            d = received - sent_at
            base = current.get(gateway)
            if base is None or d < base:
                current[gateway] = base = d
            old = previous.get(gateway)
            if old is not None and old < base:
                base = old
            delays.append(d - base)
        if delays:
            delays.sort()
            self.lag_s = delays[len(delays) // 2] / 1000
        return self.lag_s


@dataclass(frozen=True, slots=True)
class StatusMessage:
    """A retained publish the worker should make: ``payload`` empty clears the status."""

    payload: bytes
    expiry_s: int


class BehindStatus:
    """Decides when a worker publishes, refreshes and clears its retained ``behind`` status."""

    def __init__(self, worker: str, *, threshold_s: float = BACKLOG_BEHIND_S,
                 expiry_s: float = BEHIND_EXPIRY_S) -> None:
        self.worker = worker
        self.threshold_s = threshold_s
        self.expiry_s = max(1, round(expiry_s))
        self.behind = False
        self._published = True  # a restarted worker clears whatever its previous life left retained
        self.published = 0

    def tick(self, lag_s: float, now_ms: int, *, stalled: bool = False) -> StatusMessage | None:
        """Every :data:`STATUS_REFRESH_S`: the message to publish now (``None``: nothing to say).

        ``lag_s``: :attr:`BacklogEstimate.lag_s` when the last commit was recent, else 0;
        ``stalled``: messages are held that could not be committed for ``threshold_s``."""
        if lag_s >= self.threshold_s or stalled:
            self.behind = True
        elif lag_s < self.threshold_s / 2:
            self.behind = False
        if self.behind:
            self._published = True
            return StatusMessage(encode_ingest_behind(self.worker, lag_s, self.expiry_s, now_ms), self.expiry_s)
        if self._published:
            return StatusMessage(b"", 0)
        return None

    def clear(self) -> StatusMessage | None:
        """The clearing message when a status may be up (the worker stops), else ``None``."""
        self.behind = False
        return StatusMessage(b"", 0) if self._published else None

    def sent(self, message: StatusMessage) -> None:
        """The message was accepted by the MQTT client (a refused one is retried next tick)."""
        self.published += 1
        if not message.payload:
            self._published = False
