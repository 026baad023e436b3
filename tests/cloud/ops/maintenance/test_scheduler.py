"""The maintenance scheduler against a real PostgreSQL, on a pinned clock: planned orders across a
month end and a restart, no duplicates (also from two processes at once), completion with the
checklist and both signatures, overdue escalation and alarm, the lift compliance flag."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from cloud.ops.escalation import escalate_due
from cloud.ops.maintenance import repo
from cloud.ops.maintenance.completion import Answer, confirm, submit
from cloud.ops.maintenance.scheduler import NONCOMPLIANT_RULE, OVERDUE_RULE, MaintenanceScheduler, run_once
from cloud.ops.maintenance.templates import Catalog, shipped
from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import InvalidRequest, NotAllowed
from cloud.ops.model.policy import Policy
from cloud.ops.workorders import repo as wo_repo
from guanjia.core.clock import ManualClock
from tests.support.workorders import add_butler

SHANGHAI = ZoneInfo("Asia/Shanghai")
SIGNATURE = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()


def local(year: int, month: int, day: int, hour: int, minute: int) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def catalog() -> Catalog:
    return shipped()


async def _plan(conn: psycopg.AsyncConnection[Any], catalog: Catalog, now: datetime, **kw: Any) -> repo.Plan:
    args: dict[str, Any] = {"community": "cp", "scope": "device", "target": "lift-1",
                            "template": "lift.half_monthly", "starts_on": date(2027, 1, 31)} | kw
    return await repo.create_plan(conn, catalog, now=now, **args)


def _answers(catalog: Catalog, template: str = "lift.half_monthly", *, photos: bool = True) -> list[Answer]:
    out = []
    for item in catalog.get(template).items:
        photo = f"photos/{item.id}.jpg" if photos and item.photo else None
        if item.check == "reading":
            out.append(Answer(item.id, value=0.3 if item.unit == "mm" else 1.0, photo=photo))
        else:
            out.append(Answer(item.id, ok=True, photo=photo))
    return out


async def _do(conn: psycopg.AsyncConnection[Any], policy: Policy, catalog: Catalog, wo_id: int, butler: int,
              staff: int, now: datetime) -> None:
    me = Actor.butler(butler)
    for action in ("accept", "arrive"):
        await wo_repo.transition(conn, policy, wo_id, action, me, now)
    await submit(conn, policy, catalog, wo_id, me, _answers(catalog), SIGNATURE, now)
    await confirm(conn, policy, wo_id, Actor.butler(staff), SIGNATURE, now + timedelta(minutes=5))


async def _orders(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    cur = await conn.execute("SELECT work_order_id, due_on, due_at, state FROM maintenance_orders ORDER BY id")
    return await cur.fetchall()


async def _alarm_active(conn: psycopg.AsyncConnection[Any], rule: str) -> bool:
    cur = await conn.execute("SELECT active FROM alarms WHERE device = 'lift-1' AND rule = %s AND current", (rule,))
    row = await cur.fetchone()
    return bool(row and row[0])


async def test_orders_open_ahead_across_month_end_and_restart_without_duplicates(
        full: Any, policy: Policy, catalog: Catalog, wo_db: str) -> None:
    conn, _, _ = full
    butler = (await (await conn.execute("SELECT id FROM butlers WHERE name = '王师傅'")).fetchone())[0]
    lead = await add_butler(conn, "李主管", community="cp", role="team_lead")
    clock = ManualClock(local(2027, 1, 27, 23, 0))
    await _plan(conn, catalog, clock.now(), assignee_id=butler)

    # due 31 Jan (a month end); lead 3 days → opened at local midnight of the 28th, not before
    assert (await run_once(conn, policy, catalog, clock.now())).opened == []
    clock.set(local(2027, 1, 28, 0, 30))
    first = await run_once(conn, policy, catalog, clock.now())
    assert len(first.opened) == 1
    assert await run_once(conn, policy, catalog, clock.now()) == type(first)()  # nothing twice
    # a restart: a new scheduler on a new connection remembers nothing but the database
    async with await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as other:
        assert (await run_once(other, policy, catalog, clock.now() + timedelta(hours=1))).opened == []
    (wo_id, due_on, due_at, state), = await _orders(conn)
    assert (due_on, due_at, state) == (date(2027, 1, 31), local(2027, 2, 1, 0, 0), "open")
    wo = await wo_repo.get(conn, wo_id)
    assert (wo["origin"], wo["assignee_id"], wo["resolve_due"], wo["skill"]) == ("planned", butler, due_at,
                                                                                 "elevator")
    assert "电梯半月维保" in wo["title_zh"]  # the template's names: each language in its own column
    assert "Lift half-monthly" in wo["title"]

    # done on 30 Jan (local) → the next is due 15 days later, 14 Feb, opened on the 11th
    clock.set(local(2027, 1, 30, 10, 0))
    await _do(conn, policy, catalog, wo_id, butler, lead, clock.now())
    assert [o[3] for o in await _orders(conn)] == ["completed"]
    clock.set(local(2027, 2, 10, 23, 59))
    assert (await run_once(conn, policy, catalog, clock.now())).opened == []
    clock.set(local(2027, 2, 11, 0, 1))
    assert len((await run_once(conn, policy, catalog, clock.now())).opened) == 1
    assert [(o[1], o[3]) for o in await _orders(conn)] == [(date(2027, 1, 31), "completed"),
                                                           (date(2027, 2, 14), "open")]
    trail = [t["action"] for t in await wo_repo.trail(conn, wo_id)]
    assert {"planned", "maintenance_submitted", "resolve", "maintenance_confirmed", "close"} <= set(trail)


async def test_two_schedulers_at_once_open_one_order(full: Any, policy: Policy, catalog: Catalog,
                                                     wo_db: str) -> None:
    conn, _, _ = full
    now = local(2027, 1, 30, 9, 0)
    await _plan(conn, catalog, now, scope="community", target="")
    async with await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as a, \
            await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as b:
        results = await asyncio.gather(run_once(a, policy, catalog, now), run_once(b, policy, catalog, now))
    assert sorted(len(r.opened) for r in results) == [0, 1]
    assert len(await _orders(conn)) == 1


async def test_completion_needs_checklist_photos_readings_and_two_people(
        full: Any, policy: Policy, catalog: Catalog) -> None:
    conn, _, _ = full
    butler = (await (await conn.execute("SELECT id FROM butlers WHERE name = '王师傅'")).fetchone())[0]
    lead = await add_butler(conn, "李主管", community="cp", role="team_lead")
    now = local(2027, 1, 30, 9, 0)
    await _plan(conn, catalog, now, assignee_id=butler)
    wo_id, = (await run_once(conn, policy, catalog, now)).opened
    me = Actor.butler(butler)
    for action in ("accept", "arrive"):
        await wo_repo.transition(conn, policy, wo_id, action, me, now)
    with pytest.raises(InvalidRequest, match="brake: photo required"):
        await submit(conn, policy, catalog, wo_id, me, _answers(catalog, photos=False), SIGNATURE, now)
    with pytest.raises(InvalidRequest, match="levelling: not answered"):
        await submit(conn, policy, catalog, wo_id, me, [a for a in _answers(catalog) if a.id != "levelling"],
                     SIGNATURE, now)
    with pytest.raises(InvalidRequest, match="signature"):
        await submit(conn, policy, catalog, wo_id, me, _answers(catalog), "data:image/png;base64,AAAA", now)
    answers = [Answer(a.id, ok=a.ok, value=0.9 if a.id == "brake_gap" else a.value, photo=a.photo)
               for a in _answers(catalog)]
    await submit(conn, policy, catalog, wo_id, me, answers, SIGNATURE, now)
    with pytest.raises(NotAllowed):
        await confirm(conn, policy, wo_id, me, SIGNATURE, now)  # not their own work
    assert await repo.last_completed(conn, "cp", "lift-1", "lift.half_monthly") is None  # not yet completed
    await confirm(conn, policy, wo_id, Actor.butler(lead), SIGNATURE, now)
    order = await repo.order_for_work_order(conn, wo_id)
    brake_gap = next(c for c in order["checklist"] if c["id"] == "brake_gap")
    assert brake_gap["ok"] is False
    assert brake_gap["value"] == 0.9
    assert order["state"] == "completed"
    assert order["maintainer_signature"]
    assert order["staff_signature"]
    wo = await wo_repo.get(conn, wo_id)
    assert wo["state"] == "closed"
    assert "photos/brake.jpg" in wo["photos"]
    submitted = next(t for t in await wo_repo.trail(conn, wo_id) if t["action"] == "maintenance_submitted")
    assert "brake_gap" in submitted["note"]
    assert len(submitted["data"]["checklist"]) == 9


async def test_overdue_escalates_and_raises_an_alarm_cleared_on_completion(
        full: Any, policy: Policy, catalog: Catalog) -> None:
    conn, _, _ = full
    butler = (await (await conn.execute("SELECT id FROM butlers WHERE name = '王师傅'")).fetchone())[0]
    lead = await add_butler(conn, "李主管", community="cp", role="team_lead")
    await conn.execute("UPDATE butlers SET manager_id = %s WHERE id = %s", (lead, butler))
    clock = ManualClock(local(2027, 1, 29, 9, 0))
    await _plan(conn, catalog, clock.now(), assignee_id=butler)
    wo_id, = (await run_once(conn, policy, catalog, clock.now())).opened
    await wo_repo.transition(conn, policy, wo_id, "accept", Actor.butler(butler), clock.now())
    assert await escalate_due(conn, policy, clock.now()) == 0

    clock.set(local(2027, 1, 31, 23, 59))  # still on the due day
    assert await escalate_due(conn, policy, clock.now()) == 0
    assert (await run_once(conn, policy, catalog, clock.now())).overdue_raised == []
    clock.set(local(2027, 2, 1, 0, 1))  # the due day is over
    assert await escalate_due(conn, policy, clock.now()) == 1
    escalated = [t for t in await wo_repo.trail(conn, wo_id) if t["action"] == "escalated"]
    assert escalated
    assert escalated[0]["data"]["to"] == lead
    passed = await run_once(conn, policy, catalog, clock.now())
    assert passed.overdue_raised == ["lift-1"]
    assert passed.opened == []
    assert await _alarm_active(conn, OVERDUE_RULE)
    cur = await conn.execute("SELECT message, labels ->> 'message_zh' FROM alarms WHERE rule = %s AND current",
                             (OVERDUE_RULE,))
    message, message_zh = await cur.fetchone()
    assert message.startswith("planned maintenance overdue: ")
    assert message_zh.startswith("计划维保逾期：")
    assert (await run_once(conn, policy, catalog, clock.now())).overdue_raised == []  # raised once

    clock.advance(timedelta(hours=2))
    await wo_repo.transition(conn, policy, wo_id, "arrive", Actor.butler(butler), clock.now())
    await submit(conn, policy, catalog, wo_id, Actor.butler(butler), _answers(catalog), SIGNATURE, clock.now())
    await confirm(conn, policy, wo_id, Actor.butler(lead), SIGNATURE, clock.now())
    assert (await run_once(conn, policy, catalog, clock.now())).overdue_cleared == ["lift-1"]
    assert not await _alarm_active(conn, OVERDUE_RULE)


async def test_lift_is_flagged_after_15_days_without_half_monthly_maintenance(
        full: Any, policy: Policy, catalog: Catalog) -> None:
    conn, _, _ = full
    butler = (await (await conn.execute("SELECT id FROM butlers WHERE name = '王师傅'")).fetchone())[0]
    lead = await add_butler(conn, "李主管", community="cp", role="team_lead")
    await _plan(conn, catalog, local(2027, 1, 1, 0, 0), starts_on=date(2027, 1, 31), assignee_id=butler)
    # plan's start counts as the reference of a lift never maintained: flagged after 31 Jan + 15 days
    assert (await run_once(conn, policy, catalog, local(2027, 2, 14, 23, 0))).noncompliant_raised == []
    result = await run_once(conn, policy, catalog, local(2027, 2, 15, 0, 30))
    assert result.noncompliant_raised == ["lift-1"]
    assert await _alarm_active(conn, NONCOMPLIANT_RULE)
    cur = await conn.execute("SELECT message, labels ->> 'message_zh' FROM alarms WHERE rule = %s AND current",
                             (NONCOMPLIANT_RULE,))
    message, message_zh = await cur.fetchone()
    assert "15" in message
    assert "half-monthly" in message
    assert "半月维保" in message_zh  # each language on its own (issue 18)
    wo_id, = [o[0] for o in await _orders(conn)]
    await _do(conn, policy, catalog, wo_id, butler, lead, local(2027, 2, 16, 9, 0))
    assert (await run_once(conn, policy, catalog, local(2027, 2, 16, 10, 0))).noncompliant_cleared == ["lift-1"]


async def test_plan_interval_outside_bounds_is_refused(full: Any, catalog: Catalog) -> None:
    conn, _, _ = full
    with pytest.raises(InvalidRequest, match="interval_days: 20 lies outside"):
        await _plan(conn, catalog, local(2027, 1, 1, 0, 0), interval_days=20)
    with pytest.raises(InvalidRequest, match="no pump device"):
        await _plan(conn, catalog, local(2027, 1, 1, 0, 0), template="pump.monthly")


async def test_component_tick_uses_the_injected_clock(full: Any, policy: Policy, catalog: Catalog,
                                                      wo_db: str) -> None:
    from psycopg_pool import AsyncConnectionPool

    conn, _, _ = full
    clock = ManualClock(local(2027, 1, 20, 9, 0))
    await _plan(conn, catalog, clock.now())
    scheduler = MaintenanceScheduler(policy, catalog, clock)
    async with AsyncConnectionPool(wo_db, min_size=1, max_size=2, open=False,
                                   kwargs={"autocommit": True}) as pool:
        assert (await scheduler.tick(pool)).opened == []
        clock.set(local(2027, 1, 28, 0, 0))
        assert len((await scheduler.tick(pool)).opened) == 1
    assert scheduler.opened == 1


async def test_condition_based_plan_reads_the_health_record(full: Any, policy: Policy, catalog: Catalog) -> None:
    conn, _, device = full
    butler = (await (await conn.execute("SELECT id FROM butlers WHERE name = '王师傅'")).fetchone())[0]
    lead = await add_butler(conn, "李主管", community="cp", role="team_lead")
    await _plan(conn, catalog, local(2027, 1, 1, 0, 0), condition_based=True, assignee_id=butler)
    wo_id, = (await run_once(conn, policy, catalog, local(2027, 1, 29, 9, 0))).opened
    await _do(conn, policy, catalog, wo_id, butler, lead, local(2027, 1, 30, 9, 0))
    # a sick, busy lift: score 55, 3 faults in 30 days → 15 × 0.6 × 0.7 = 6.3 → the lower bound, 7 days
    await conn.execute(
        """INSERT INTO device_health (device_id, kind, window_start, window_end, record, score)
           VALUES (%s, 'elevator', %s, %s, %s, 55)""",
        (device, local(2027, 1, 1, 0, 0), local(2027, 1, 31, 0, 0),
         psycopg.types.json.Jsonb({"trips": 9000, "faults": {"door": 3}})))
    opened = (await run_once(conn, policy, catalog, local(2027, 2, 3, 0, 5))).opened
    assert len(opened) == 1
    cur = await conn.execute("SELECT due_on, interval_days, interval_reason FROM maintenance_orders "
                             "WHERE work_order_id = %s", (opened[0],))
    due_on, days, reason = await cur.fetchone()
    assert (due_on, days) == (date(2027, 2, 6), 7)
    assert "下限 7" in reason
    assert "health score 55" in reason
    assert reason in (await wo_repo.get(conn, opened[0]))["description"]
