"""The order in which alarm events happened, whatever order they arrive in (pure, no I/O).

The cloud receives an alarm's raise and clear over QoS 1 from an outbox that resends after a
broker restart, a lost confirmation or a database restore, and from two ingest workers whose
transactions commit in any order; fleet rules and the offline watchdog add events without a
gateway. So every event carries a :class:`Stamp` and the lifecycle applies an event only when it
is *newer* than the last change applied to its alarm (kept on the alarm row: ``last_event_ms``,
``last_seq``, ``last_seq_space``). An older one changes nothing and goes to the trail as "late".

The key, decided per pair of stamps:

1. **Same event time → the same event.** One rule makes one transition per instant, so a second
   copy with the same ``ts`` is a duplicate (redelivery, a resend under the same seq, a replay).
2. **Same gateway and outbox incarnation → the outbox seq decides.** The edge assigns the seq
   once, when the event enters its durable outbox, in the order the rules emitted the events,
   keeps it across every resend, and never reuses one within an incarnation. So inside one
   incarnation the seq *is* the order of occurrence, and it does not care about clocks: an edge
   clock stepped back by NTP, or a device clock that jumps (issue 24; readings, and so the events,
   may carry the device's time), cannot reorder events that the seq orders. Two events of one
   (device, rule) in the same batch (same seq) are ordered by their time.
3. **Same gateway, incarnation not known on both sides → seq and time must both say older.** A
   wiped or replaced outbox restarts its seq counter (a new incarnation); for events whose
   incarnation is unknown (rows from before migration 010), a lower seq with a *later* time is
   taken as such a restart (newer), a higher seq with an earlier time as a clock step (newer),
   and only an event lower in both as late (the resent raise after its clear). Known limit of
   this fallback: a clock stepped back between a raise and its clear *and* the two reordered
   makes the raise look newer.
4. **Otherwise → the event time**: two incarnations (never compare two counters), a device moved
   to another gateway, and sources without a seq (fleet rules, system watchdogs, or a row written
   before this key existed) compare the edge's (or the cloud clock's) event time. Known limit: an
   edge clock stepped back *and* a new incarnation at the same moment can make the first events
   of the new incarnation look late until their time passes the old last one.

The space is stored as ``<gateway>#<incarnation>`` (``<gateway>#`` while the incarnation is
unknown).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Order = Literal["newer", "same", "older"]


@dataclass(frozen=True, slots=True)
class Stamp:
    """Where an event sits in its alarm's history: event time (epoch ms), and for edge events the
    outbox seq and its space."""

    ts: int
    seq: int | None = None
    space: str | None = None

    @classmethod
    def of_row(cls, row: dict[str, Any]) -> Stamp:
        """The stamp of the last change applied to an ``alarms`` row."""
        return cls(int(row["last_event_ms"]), row.get("last_seq"), row.get("last_seq_space"))


def seq_space(gateway: str | None, incarnation: str | None) -> str | None:
    """``<gateway>#<incarnation>`` (the incarnation may be unknown: ``<gateway>#``)."""
    return None if gateway is None else f"{gateway}#{incarnation or ''}"


def _split(space: str) -> tuple[str, str]:
    gateway, _, incarnation = space.rpartition("#")
    return gateway, incarnation


def compare(event: Stamp, last: Stamp) -> Order:
    """Is ``event`` newer than, the same as, or older than ``last``? (rules in the module doc)"""
    if event.ts == last.ts:
        return "same"
    if event.seq is not None and last.seq is not None and event.space is not None and last.space is not None:
        (gateway, incarnation), (last_gateway, last_incarnation) = _split(event.space), _split(last.space)
        if gateway == last_gateway:
            if incarnation and last_incarnation:
                if incarnation == last_incarnation and event.seq != last.seq:
                    return "newer" if event.seq > last.seq else "older"
            elif event.seq != last.seq:  # incarnation unknown: older only if seq and time both say so
                return "older" if event.seq < last.seq and event.ts < last.ts else "newer"
    return "newer" if event.ts > last.ts else "older"
