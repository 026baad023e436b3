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
2. **Same seq space → the outbox seq decides.** The space is ``<gateway>#<outbox incarnation>``.
   The edge assigns the seq once, when the event enters its durable outbox, in the order the rules
   emitted the events, keeps it across every resend, and never reuses one (salvage jumps ahead). So
   inside one space the seq *is* the order of occurrence, and it does not care about clocks: an
   edge clock stepped back by NTP, or a device clock that jumps (issue 24; readings, and so the
   events, may carry the device's time), cannot reorder events that the seq orders. Two events of
   one (device, rule) in the same batch (same seq) are ordered by their time.
3. **Otherwise → the event time.** A new outbox incarnation (a wiped or replaced outbox restarts
   its seq counter; the envelope names the incarnation so the two counters are never compared), a
   device moved to another gateway, and sources without a seq (fleet rules, system watchdogs, or a
   row written before this key existed) compare the edge's (or the cloud clock's) event time.
   Known limit: an edge clock stepped back *and* a new incarnation at the same moment can make the
   first events of the new incarnation look late until their time passes the old last one.

Until the envelope carries the incarnation (another part adds it), the space is the gateway
alone: the outbox never restarts its seq counter silently (salvage jumps it forward), so this is
safe for every outbox the edge writes today.
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


def compare(event: Stamp, last: Stamp) -> Order:
    """Is ``event`` newer than, the same as, or older than ``last``? (rules in the module doc)"""
    if event.ts == last.ts:
        return "same"
    if (event.seq is not None and last.seq is not None and event.space is not None
            and event.space == last.space and event.seq != last.seq):
        return "newer" if event.seq > last.seq else "older"
    return "newer" if event.ts > last.ts else "older"
