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
"""

from __future__ import annotations

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


def cloud_active_alarms(stack: Stack, community: str) -> set[tuple[str, str]]:
    return {(str(d), str(r)) for d, r in stack.sql(_CLOUD_ACTIVE, community)}


@dataclass(slots=True)
class AlarmStates:
    ghosts: list[tuple[str, str]]
    """Active in the cloud, not at the edge."""
    unseen: list[tuple[str, str]]
    """Active at the edge, not in the cloud."""

    @property
    def mismatches(self) -> int:
        return len(self.ghosts) + len(self.unseen)


def compare_alarm_states(stack: Stack, community: str, state_path: Path, timeout: float = 30.0) -> AlarmStates:
    """Edge state vs cloud state, waiting up to ``timeout`` for the cloud to apply what it received."""
    edge = edge_active_alarms(state_path) or set()
    deadline = time.monotonic() + timeout
    while True:
        cloud = cloud_active_alarms(stack, community)
        if cloud == edge or time.monotonic() > deadline:
            return AlarmStates(ghosts=sorted(cloud - edge), unseen=sorted(edge - cloud))
        time.sleep(1.0)
