"""The alarm processor over ingest's real schema (all migrations): alarm_events rows → alarms →
work orders, exactly once across repeated batches and out-of-order commits; offline watchdog."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from cloud.ops.alarms.offline import check_gateways
from cloud.ops.alarms.processor import process_batch
from cloud.ops.model.policy import default_policy
from guanjia.core.clock import ManualClock


async def insert_event(conn: psycopg.AsyncConnection[Any], gateway: int, device: int, seq: int, state: str,
                       ts: datetime, rule: str = "passengers_trapped") -> None:
    await conn.execute(
        """INSERT INTO alarm_events (gateway_id, seq, device_id, device_code, rule, state, severity, ts, message,
                                     work_order, labels)
           VALUES (%s, %s, %s, 'lift-1', %s, %s, 'critical', %s, 'trapped', true, %s)""",
        (gateway, seq, device, rule, state, ts, Jsonb({})))


async def test_processor_turns_events_into_one_order(full: Any, clock: ManualClock) -> None:
    conn, gateway, device = full
    policy = default_policy()
    t0 = clock.now()
    await insert_event(conn, gateway, device, 1, "raise", t0)
    await insert_event(conn, gateway, device, 2, "raise", t0)  # the same fault sent twice (edge replay)
    results = await process_batch(conn, policy, clock.now())
    assert [r.outcome for r in results] == ["raised", "duplicate"]
    assert await process_batch(conn, policy, clock.now()) == []  # nothing new: nothing re-applied
    cur = await conn.execute("SELECT device_kind, building, priority, state FROM work_orders")
    assert await cur.fetchall() == [("elevator", "b7", "P0", "assigned")]
    await insert_event(conn, gateway, device, 3, "clear", t0 + timedelta(seconds=30))
    assert [r.outcome for r in await process_batch(conn, policy, clock.now())] == ["cleared"]
    cur = await conn.execute("SELECT count(*) FROM alarm_events_applied")
    assert (await cur.fetchone() or (0,))[0] == 3  # the cursor waits until ids are settled
    cur = await conn.execute("UPDATE alarm_events SET received_at = received_at - interval '2 minutes'")
    await process_batch(conn, policy, clock.now())
    cur = await conn.execute("SELECT last_id FROM alarm_event_cursor")
    assert (await cur.fetchone() or (0,))[0] == 3
    cur = await conn.execute("SELECT count(*) FROM alarm_events_applied")
    assert (await cur.fetchone() or (0,))[0] == 0


async def test_offline_watchdog(full: Any, clock: ManualClock) -> None:
    conn, _gateway, _device = full
    policy = default_policy()
    timeout = timedelta(minutes=2)
    assert await check_gateways(conn, policy, clock.now(), timeout) == []
    clock.advance(timedelta(minutes=3))  # no heartbeat for 3 minutes
    assert [r.outcome for r in await check_gateways(conn, policy, clock.now(), timeout)] == ["held"]
    assert await check_gateways(conn, policy, clock.now(), timeout) == []  # still down: no churn
    clock.advance(policy.inhibition.grace)  # still down after the reconnect grace: the order opens
    assert [r.outcome for r in await check_gateways(conn, policy, clock.now(), timeout)] == ["announced"]
    assert await check_gateways(conn, policy, clock.now(), timeout) == []
    cur = await conn.execute("SELECT priority, device_kind FROM work_orders WHERE device = 'gw1'")
    assert await cur.fetchone() == ("P1", "gateway")
    await conn.execute("UPDATE gateways SET last_seen = %s", (clock.now(),))
    assert [r.outcome for r in await check_gateways(conn, policy, clock.now(), timeout)] == ["cleared"]
    await conn.execute("UPDATE gateways SET online = false")  # last will "offline"
    clock.advance(policy.flap_window + timedelta(minutes=1))
    assert [r.outcome for r in await check_gateways(conn, policy, clock.now(), timeout)] == ["held"]
    clock.advance(policy.inhibition.grace)
    results = await check_gateways(conn, policy, clock.now(), timeout)
    assert [r.outcome for r in results] == ["announced"]
    # the first outage's order is still open (cleared is not repaired): it covers the new episode
    assert not results[0].work_order_opened
    cur = await conn.execute("SELECT count(*) FROM work_orders WHERE device = 'gw1'")
    assert (await cur.fetchone() or (0,))[0] == 1
