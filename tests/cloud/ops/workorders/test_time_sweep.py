"""The date- and time-sensitive work-order logic at any hour (issue 14, section 1).

Cheap pure logic (SLA deadlines and breaches, duty rosters across midnight, analytics' local
hour of week) is swept over every hour of one day, in UTC and in Asia/Shanghai (the communities'
zone), plus a month end, a year end, a leap day and a Sunday. The database-backed flows (open →
escalate → accept, routing by roster) run at a few chosen instants on a :class:`ManualClock`:
the database never supplies business time, so they must pass whatever the real date is.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
import pytest

from cloud.analytics.features import hour_of_week
from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.escalation import escalate_due
from cloud.ops.model.actors import Actor
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import Policy, default_policy
from cloud.ops.routing.roster import Shift, next_shift_start, on_duty
from cloud.ops.workorders import repo
from guanjia.core.clock import ManualClock, to_ms
from tests.support.workorders import add_butler

SHANGHAI = ZoneInfo("Asia/Shanghai")
ZONES = {"UTC": UTC, "Asia/Shanghai": SHANGHAI}

EDGES = {
    "month-end": datetime(2027, 1, 31, 23, 59, 30, tzinfo=SHANGHAI),
    "year-end": datetime(2026, 12, 31, 23, 59, 30, tzinfo=SHANGHAI),
    "year-end-utc": datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC),
    "leap-day": datetime(2028, 2, 29, 12, 30, tzinfo=UTC),
    "sunday-night": datetime(2026, 12, 6, 23, 30, tzinfo=SHANGHAI),
    "noon-utc": datetime(2026, 12, 7, 12, 30, tzinfo=UTC),
}


def _instants() -> list[Any]:
    day = [pytest.param(datetime(2026, 12, 7, hour, 30, tzinfo=tz), id=f"{name}-{hour:02d}h")
           for name, tz in ZONES.items() for hour in range(24)]
    return day + [pytest.param(when, id=name) for name, when in EDGES.items()]


INSTANTS = _instants()
DB_INSTANTS = [pytest.param(EDGES[name], id=name) for name in ("month-end", "year-end", "sunday-night", "noon-utc")]


# ---------------------------------------------------------------- pure logic, every hour
@pytest.mark.parametrize("now", INSTANTS)
def test_sla_deadlines_and_breaches_at_any_instant(now: datetime) -> None:
    policy = default_policy()
    for priority, clocks in policy.priorities.items():
        sla = policy.sla(priority, now)
        assert (sla.respond_due - now, sla.on_site_due - now, sla.resolve_due - now) == (
            clocks.respond, clocks.on_site, clocks.resolve)
        wo: dict[str, Any] = {"state": "assigned", "accepted_at": None, "on_site_at": None, "resolved_at": None,
                              "respond_due": sla.respond_due, "on_site_due": sla.on_site_due,
                              "resolve_due": sla.resolve_due}
        assert repo.overdue(wo, now) == {"respond": False, "on_site": False, "resolve": False}
        just_late = sla.respond_due + timedelta(seconds=1)
        assert repo.overdue(wo, just_late)["respond"]
        assert repo.overdue(wo, sla.resolve_due + timedelta(seconds=1)) == {
            "respond": True, "on_site": True, "resolve": True}


NIGHT_SUN = [Shift(6, time(20), time(8))]  # Sunday 20:00 → Monday 08:00, local time


def _expected_on_duty(now: datetime, tz: str) -> bool:
    local = now.astimezone(ZoneInfo(tz))
    return (local.weekday() == 6 and local.hour >= 20) or (local.weekday() == 0 and local.hour < 8)


@pytest.mark.parametrize("now", INSTANTS)
@pytest.mark.parametrize("tz", ["Asia/Shanghai", "UTC"])
def test_roster_across_midnight_and_week_end_at_any_instant(now: datetime, tz: str) -> None:
    assert on_duty(NIGHT_SUN, tz, now) == _expected_on_duty(now, tz)
    start = next_shift_start(NIGHT_SUN, tz, now)
    assert start is not None
    assert start > now
    assert start - now <= timedelta(days=7)
    local = start.astimezone(ZoneInfo(tz))
    assert (local.weekday(), local.time()) == (6, time(20))
    assert on_duty(NIGHT_SUN, tz, start)
    assert not on_duty(NIGHT_SUN, tz, start - timedelta(seconds=1))


@pytest.mark.parametrize("now", INSTANTS)
def test_analytics_hour_of_week_is_shanghai_local_time(now: datetime) -> None:
    local = now.astimezone(SHANGHAI)
    slot = int(hour_of_week(np.array([to_ms(now)], dtype=np.int64))[0])
    assert slot == local.weekday() * 24 + local.hour


def test_the_sweep_covers_the_calendar_edges() -> None:
    hours = {p.values[0].astimezone(timezone(timedelta(hours=8))).hour for p in INSTANTS}
    assert hours == set(range(24))
    assert any(p.values[0].weekday() == 6 for p in INSTANTS)


# ---------------------------------------------------------------- database flows, chosen instants
def _trapped(clock: ManualClock, device: str = "lift-1") -> AlarmEvent:
    return AlarmEvent(community="c1", device=device, rule="elevator_trapped", state="raise", ts=to_ms(clock.now()),
                      severity="critical", message="passengers trapped", work_order=True, device_kind="elevator")


@pytest.mark.parametrize("start", DB_INSTANTS)
async def test_open_escalate_accept_at_calendar_edges(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                      policy: Policy, start: datetime) -> None:
    clock.set(start)
    manager = await add_butler(conn, "经理", role="manager")
    butler = await add_butler(conn, "周师傅", manager_id=manager)
    result = await apply_event(conn, policy, _trapped(clock), clock.now())
    assert result.work_order_id is not None
    wo = await repo.get(conn, result.work_order_id)
    assert wo["respond_due"] == start + policy.priorities["P0"].respond
    assert await escalate_due(conn, policy, clock.now()) == 0
    clock.advance(policy.priorities["P0"].respond + timedelta(seconds=1))  # across midnight / month / year
    assert await escalate_due(conn, policy, clock.now()) == 1
    accepted = await repo.transition(conn, policy, wo["id"], "accept", Actor.butler(butler), clock.now())
    assert accepted["accepted_at"] == clock.now()
    assert accepted["next_escalation_at"] == wo["on_site_due"]
    assert repo.overdue(accepted, clock.now())["respond"]


@pytest.mark.parametrize("start", DB_INSTANTS)
async def test_routing_follows_the_night_roster_at_calendar_edges(conn: psycopg.AsyncConnection[Any],
                                                                  clock: ManualClock, policy: Policy,
                                                                  start: datetime) -> None:
    clock.set(start)
    night = await add_butler(conn, "夜班", star=3, shifts=NIGHT_SUN)
    day = await add_butler(conn, "白班", star=3, shifts=[Shift(d, time(8), time(20)) for d in range(7)])
    result = await apply_event(conn, policy, _trapped(clock), clock.now())
    assert result.work_order_id is not None
    wo = await repo.get(conn, result.work_order_id)
    local = start.astimezone(SHANGHAI)
    if _expected_on_duty(start, "Asia/Shanghai"):
        assert wo["assignee_id"] == night
    elif 8 <= local.hour < 20:
        assert wo["assignee_id"] == day
    else:  # a weekday night: nobody on duty, the order still goes to someone (clock runs as usual)
        assert wo["assignee_id"] in (night, day)
