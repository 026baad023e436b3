"""Alarm lifecycle against a real database: raise/update/clear/ack, flapping, idempotency."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import psycopg

from cloud.ops.alarms.lifecycle import acknowledge, apply_event
from cloud.ops.model.actors import Actor
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import Policy
from cloud.ops.workorders import repo
from guanjia.core.clock import ManualClock, to_ms
from tests.support.workorders import add_butler


def trapped(clock: ManualClock, state: str = "raise", device: str = "lift-1", **kw: Any) -> AlarmEvent:
    return AlarmEvent(community="c1", device=device, rule="elevator_trapped", state=state,  # type: ignore[arg-type]
                      ts=to_ms(clock.now()), severity=kw.pop("severity", "critical"), message="passengers trapped",
                      work_order=True, gateway="gw1", device_kind="elevator", building="b1", **kw)


async def count(conn: psycopg.AsyncConnection[Any], sql: str, *args: Any) -> int:
    cur = await conn.execute(sql, args)
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def test_raise_opens_one_routed_work_order(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                 policy: Policy) -> None:
    butler = await add_butler(conn, "王师傅", buildings=("b1",))
    event = trapped(clock)
    first = await apply_event(conn, policy, event, clock.now())
    assert first.outcome == "raised"
    assert first.work_order_opened
    again = await apply_event(conn, policy, event, clock.now())  # broker redelivery
    assert again.outcome == "duplicate"
    assert again.alarm_id == first.alarm_id
    assert await count(conn, "SELECT count(*) FROM alarms") == 1
    assert await count(conn, "SELECT count(*) FROM work_orders") == 1
    assert first.work_order_id is not None
    wo = await repo.get(conn, first.work_order_id)
    assert wo["state"] == "assigned"
    assert wo["assignee_id"] == butler
    assert wo["priority"] == "P0"
    assert wo["respond_due"] - wo["created_at"] == timedelta(minutes=1)
    assert wo["on_site_due"] - wo["created_at"] == timedelta(minutes=15)
    assert await count(conn, "SELECT count(*) FROM notifications WHERE channel = 'inbox' AND butler_id = %s",
                       butler) == 1


async def test_concurrent_duplicates_make_one_alarm_and_one_order(wo_db: str, clock: ManualClock,
                                                                  policy: Policy) -> None:
    async with await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as c0:
        await add_butler(c0, "李师傅")
    event = trapped(clock, device="lift-race")

    async def one() -> None:
        async with await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as c:
            await apply_event(c, policy, event, clock.now())

    await asyncio.gather(*(one() for _ in range(8)))
    async with await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as c:
        assert await count(c, "SELECT count(*) FROM alarms") == 1
        assert await count(c, "SELECT count(*) FROM work_orders") == 1
        assert await count(c, "SELECT count(*) FROM notifications WHERE channel = 'inbox'") == 1


async def test_clear_before_on_site_is_noted_not_closed(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                        policy: Policy) -> None:
    await add_butler(conn, "赵师傅")
    raised = await apply_event(conn, policy, trapped(clock), clock.now())
    clock.advance(timedelta(seconds=30))
    cleared = await apply_event(conn, policy, trapped(clock, "clear"), clock.now())
    assert cleared.outcome == "cleared"
    assert cleared.work_order_id == raised.work_order_id
    assert raised.work_order_id is not None
    wo = await repo.get(conn, raised.work_order_id)
    assert wo["state"] == "assigned"
    assert wo["alarm_cleared_at"] is not None
    actions = [t["action"] for t in await repo.trail(conn, raised.work_order_id)]
    assert "alarm_cleared" in actions


async def test_flapping_reopens_same_alarm_without_new_notification(conn: psycopg.AsyncConnection[Any],
                                                                    clock: ManualClock, policy: Policy) -> None:
    await add_butler(conn, "钱师傅")
    first = await apply_event(conn, policy, trapped(clock, device="lift-flap"), clock.now())
    for _ in range(5):
        clock.advance(timedelta(seconds=20))
        await apply_event(conn, policy, trapped(clock, "clear", device="lift-flap"), clock.now())
        clock.advance(timedelta(seconds=20))
        again = await apply_event(conn, policy, trapped(clock, device="lift-flap"), clock.now())
        assert again.outcome == "reopened"
        assert again.alarm_id == first.alarm_id
        assert again.work_order_id == first.work_order_id
        assert not again.work_order_opened
    cur = await conn.execute("SELECT flaps, active FROM alarms WHERE id = %s", (first.alarm_id,))
    assert await cur.fetchone() == (5, True)
    assert await count(conn, "SELECT count(*) FROM notifications WHERE channel = 'inbox'") == 1
    # after the flap window a raise is a new episode
    clock.advance(timedelta(seconds=5))
    await apply_event(conn, policy, trapped(clock, "clear", device="lift-flap"), clock.now())
    clock.advance(policy.flap_window + timedelta(minutes=1))
    later = await apply_event(conn, policy, trapped(clock, device="lift-flap"), clock.now())
    assert later.outcome == "raised"
    assert later.alarm_id != first.alarm_id
    assert await count(conn, "SELECT count(*) FROM alarms WHERE device = 'lift-flap' AND current") == 1


async def test_stale_and_out_of_order_events_change_nothing(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                            policy: Policy) -> None:
    old = trapped(clock, device="lift-ooo")
    clock.advance(timedelta(seconds=10))
    await apply_event(conn, policy, trapped(clock, device="lift-ooo"), clock.now())
    assert (await apply_event(conn, policy, old, clock.now())).outcome == "late"
    assert (await apply_event(conn, policy, old, clock.now())).outcome == "late"  # redelivered: one trail entry
    assert await count(conn, "SELECT count(*) FROM alarm_trail t JOIN alarms a ON a.id = t.alarm_id "
                             "WHERE a.device = 'lift-ooo' AND t.action = 'late'") == 1
    # a clear without a raise is remembered (a cleared alarm that never raised), so its raise is late
    first = await apply_event(conn, policy, trapped(clock, "clear", device="never-raised"), clock.now())
    assert first.outcome == "cleared_first"
    clock.advance(timedelta(seconds=-5))
    assert (await apply_event(conn, policy, trapped(clock, device="never-raised"), clock.now())).outcome == "late"
    cur = await conn.execute("SELECT active, raise_count FROM alarms WHERE device = 'never-raised' AND current")
    assert await cur.fetchone() == (False, 1)
    assert await count(conn, "SELECT count(*) FROM work_orders WHERE device = 'never-raised'") == 0


async def test_severity_change_and_acknowledge(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                               policy: Policy) -> None:
    event = AlarmEvent(community="c1", device="pump-1", rule="pump_dry_run", state="raise", ts=to_ms(clock.now()),
                       severity="minor", device_kind="pump")
    first = await apply_event(conn, policy, event, clock.now())
    assert first.work_order_id is None  # the rule did not ask for a work order
    assert first.alarm_id is not None
    acked = await acknowledge(conn, first.alarm_id, Actor("user", 7, "eng"), clock.now())
    assert acked["acknowledged"]
    clock.advance(timedelta(seconds=5))
    worse = AlarmEvent(community="c1", device="pump-1", rule="pump_dry_run", state="raise", ts=to_ms(clock.now()),
                       severity="major", device_kind="pump")
    assert (await apply_event(conn, policy, worse, clock.now())).outcome == "severity"
    cur = await conn.execute("SELECT severity, acknowledged FROM alarms WHERE id = %s", (first.alarm_id,))
    assert await cur.fetchone() == ("major", False)
    actions = [r[0] for r in await (await conn.execute(
        "SELECT action FROM alarm_trail WHERE alarm_id = %s ORDER BY id", (first.alarm_id,))).fetchall()]
    assert actions == ["raised", "acknowledged", "severity"]
