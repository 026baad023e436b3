"""What a scenario must leave behind: exactly its expected work orders, and the edge's alarm state.

Every scenario declares the work orders its fault deserves, by rule (``{"elevator-passengers-trapped":
1}``; most declare none: a broker restart is not a job for a butler). After the site is stopped the
runner counts the community's work orders by the rule of the alarm that opened them and requires
exactly the declared ones: one more is *spurious* (a needless ticket in someone's inbox, the defect of
issue 14), one fewer is *missing*. Notifications are counted the same way; those about an alarm no
work order was expected for are spurious too.

The window: incidents that *began* while the scenario ran, i.e. alarms whose event time (the edge's
clock, or the cloud's for gateway alarms) is before the site was stopped. Stopping the site is an
incident of its own (the simulators stop, devices go silent, the agent says "offline") that no
scenario is about; an alarm raised during the fault but delivered late still counts.

Ghost alarms: the edge's rule engine is the source of truth for the alarms it raises. Its state file
(written at shutdown) is compared with the cloud's current alarms of edge origin: an alarm active in
the cloud and cleared at the edge (a clear applied before its older raise) is a *ghost*; one active
at the edge and not in the cloud is *unseen*.

In flight is neither (issue 24). The agent's shutdown snapshots its rule state, commits what it has
produced and delivers it for a bounded time (``Uplink.drain``: the sender goes on until the outbox is
empty or half its deadline passed, then only waits for what it already sent), so an alarm raised in
the agent's last moments (the site's simulators are stopped first, and a silent device is declared
offline a few polls later, which can be just as SIGTERM arrives) can still be active in the state
file while its raise is in the outbox — a slow cloud, an uplink down — to be sent by the next start. The comparison
reads the outbox: a (device, rule) with an alarm event still there is *in flight*, and the cloud may
show it either as before that event or as after it (the message may have reached the cloud without
its confirmation reaching the edge); it is reported as ``in_flight``, not as a mismatch. Every other
alarm must agree, and the comparison polls until it does or its deadline passes, since the cloud may
still be applying what the agent sent last.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import orjson

from bench.chaos.harness import Stack

_WORK_ORDERS = """
SELECT COALESCE(a.rule, 'origin:' || w.origin), count(*)
FROM work_orders w LEFT JOIN alarms a ON a.id = w.alarm_id
WHERE w.community = %s AND COALESCE(a.raised_at, w.created_at) < %s
GROUP BY 1
"""

_NOTIFICATIONS = """
SELECT COALESCE(a.rule, wa.rule, 'origin:' || w.origin, n.event), count(*)
FROM notifications n
LEFT JOIN alarms a ON a.id = n.alarm_id
LEFT JOIN work_orders w ON w.id = n.work_order_id
LEFT JOIN alarms wa ON wa.id = w.alarm_id
WHERE n.community = %s AND COALESCE(a.raised_at, wa.raised_at, w.created_at, n.created_at) < %s
GROUP BY 1
"""

_CLOUD_ACTIVE = """
SELECT device, rule FROM alarms WHERE community = %s AND source = 'edge' AND current AND active
"""


@dataclass(slots=True)
class Tickets:
    """Work orders and notifications of one scenario, by rule."""

    work_orders: dict[str, int] = field(default_factory=dict)
    notifications: dict[str, int] = field(default_factory=dict)

    def spurious(self, expected: Mapping[str, int]) -> int:
        return sum(max(0, n - expected.get(rule, 0)) for rule, n in self.work_orders.items())

    def missing(self, expected: Mapping[str, int]) -> int:
        return sum(max(0, n - self.work_orders.get(rule, 0)) for rule, n in expected.items())

    def spurious_notifications(self, expected: Mapping[str, int]) -> int:
        return sum(n for rule, n in self.notifications.items() if not expected.get(rule))


def count_tickets(stack: Stack, community: str, before: datetime) -> Tickets:
    return Tickets(
        work_orders={str(r): int(n) for r, n in stack.sql(_WORK_ORDERS, community, before)},
        notifications={str(r): int(n) for r, n in stack.sql(_NOTIFICATIONS, community, before)},
    )


def wait_for_tickets(stack: Stack, community: str, before: datetime, expected: Mapping[str, int],
                     timeout: float = 60.0, settle: float = 3.0) -> Tickets:
    """Count once every expected work order is there (or ``timeout`` passed), after ``settle``
    seconds more for late spurious ones (redeliveries, the offline watchdog's next round)."""
    deadline = time.monotonic() + timeout
    while count_tickets(stack, community, before).missing(expected) and time.monotonic() < deadline:
        time.sleep(1.0)
    time.sleep(settle)
    return count_tickets(stack, community, before)


def edge_active_alarms(state_path: Path) -> set[tuple[str, str]] | None:
    """(device, rule) of every alarm active in the agent's rule state file; None without a file."""
    if not state_path.exists():
        return None
    doc = orjson.loads(state_path.read_bytes())
    return {(device, rule) for device, d in doc.get("devices", {}).items()
            for rule, r in d.get("rules", {}).items() if r.get("active")}


def outbox_alarms(outbox: Path | None) -> dict[tuple[str, str], str]:
    """(device, rule) → state of its *first* alarm event still in the agent's outbox (not yet
    confirmed as delivered), in seq order; empty without an outbox."""
    if outbox is None or not outbox.exists():
        return {}
    with sqlite3.connect(f"file:{outbox}?mode=ro", uri=True, timeout=10) as db:
        bodies = [row[0] for row in db.execute("SELECT body FROM messages WHERE kind = 'alarms' ORDER BY seq")]
    first: dict[tuple[str, str], str] = {}
    for body in bodies:
        for item in orjson.loads(body):
            first.setdefault((str(item.get("device")), str(item.get("rule"))), str(item.get("state")))
    return first


def cloud_active_alarms(stack: Stack, community: str) -> set[tuple[str, str]]:
    return {(str(d), str(r)) for d, r in stack.sql(_CLOUD_ACTIVE, community)}


@dataclass(slots=True)
class AlarmStates:
    ghosts: list[tuple[str, str]]
    """Active in the cloud, not at the edge."""
    unseen: list[tuple[str, str]]
    """Active at the edge, not in the cloud."""
    in_flight: list[tuple[str, str]] = field(default_factory=list)
    """An alarm event still in the outbox: either state in the cloud is consistent (not a mismatch)."""

    @property
    def mismatches(self) -> int:
        return len(self.ghosts) + len(self.unseen)


def compare_alarm_states(stack: Stack, community: str, state_path: Path, outbox: Path | None = None,
                         timeout: float = 30.0) -> AlarmStates:
    """Edge state vs cloud state, polling up to ``timeout`` until they agree (the cloud may still be
    applying what it received); alarms with an event still in ``outbox`` are in flight, see above."""
    edge = edge_active_alarms(state_path) or set()
    pending = outbox_alarms(outbox)
    deadline = time.monotonic() + timeout
    while True:
        cloud = cloud_active_alarms(stack, community)
        ghosts = sorted(a for a in cloud - edge if a not in pending)
        unseen = sorted(a for a in edge - cloud if a not in pending)
        if not (ghosts or unseen) or time.monotonic() > deadline:
            return AlarmStates(ghosts=ghosts, unseen=unseen, in_flight=sorted(pending))
        time.sleep(1.0)
