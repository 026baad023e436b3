"""One incident, one ticket (issue 14 §3): a gateway outage and the communication alarms of the
devices behind it, driven by the offline watchdog with a manual clock (no sleeps).

Seen: one 20 s broker restart opened 1 P1 (``gateway_offline`` from the last will) and 7 P2 work
orders (the ``*-offline`` communication alarms of the MQTT devices whose broker went away, sent by
the edge from its outbox after it reconnected) for a single butler.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.alarms.offline import check_gateways
from cloud.ops.alarms.processor import process_batch
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import Policy, default_policy
from guanjia.core.clock import ManualClock, to_ms

HEARTBEAT = timedelta(minutes=2)
DEVICES = [("lift-1", "elevator", "elevator-offline"), ("lift-2", "elevator", "elevator-offline"),
           ("lift-3", "elevator", "elevator-offline"), ("gate-1", "gate", "gate-offline"),
           ("gate-2", "gate", "gate-offline"), ("meter-1", "meter", "meter-offline"),
           ("pump-1", "pump", "pump-offline")]


def comm(clock: ManualClock, device: str, kind: str, rule: str, state: str = "raise") -> AlarmEvent:
    """A device's communication alarm as the edge rules library sends it (P2: priority normal)."""
    return AlarmEvent(community="cp", device=device, rule=rule, state=state,  # type: ignore[arg-type]
                      ts=to_ms(clock.now()), severity="major", message=f"{device}: monitoring offline",
                      work_order=True, labels={"category": "communication", "priority": "normal"},
                      gateway="gw1", source="edge", device_kind=kind)


async def scalar(conn: psycopg.AsyncConnection[Any], sql: str, *args: Any) -> Any:
    cur = await conn.execute(sql, args)
    row = await cur.fetchone()
    assert row is not None
    return row[0]


async def webhooks(conn: psycopg.AsyncConnection[Any]) -> None:
    await conn.execute("INSERT INTO webhook_endpoints (url, secret) VALUES ('http://127.0.0.1:9/h', 's')")


async def watch(conn: psycopg.AsyncConnection[Any], policy: Policy, clock: ManualClock) -> list[str]:
    return [r.outcome for r in await check_gateways(conn, policy, clock.now(), HEARTBEAT)]


async def gateway_back(conn: psycopg.AsyncConnection[Any], clock: ManualClock) -> None:
    """The retained status "online" (or a heartbeat) as ingest records it."""
    await conn.execute("UPDATE gateways SET online = true, last_seen = %s WHERE code = 'gw1'", (clock.now(),))


async def test_a_20_s_broker_restart_opens_nothing_and_notifies_nobody(full: Any, clock: ManualClock) -> None:
    conn, _gateway, _device = full
    policy = default_policy()
    await webhooks(conn)
    await conn.execute("UPDATE gateways SET online = false WHERE code = 'gw1'")  # the last will
    assert await watch(conn, policy, clock) == ["held"]
    clock.advance(timedelta(seconds=20))
    await gateway_back(conn, clock)
    assert await watch(conn, policy, clock) == ["cleared"]
    # the edge reconnects and drains its outbox: the MQTT devices' offline alarms, raised and cleared
    for device, kind, rule in DEVICES:
        clock.advance(timedelta(seconds=2))
        assert (await apply_event(conn, policy, comm(clock, device, kind, rule), clock.now())).outcome == "inhibited"
    clock.advance(timedelta(seconds=30))  # the devices are back on the broker
    for device, kind, rule in DEVICES:
        clock.advance(timedelta(seconds=1))
        assert (await apply_event(conn, policy, comm(clock, device, kind, rule, "clear"), clock.now())).outcome \
            == "cleared"
    clock.advance(policy.inhibition.grace)
    await gateway_back(conn, clock)  # its heartbeat
    assert await watch(conn, policy, clock) == []  # nothing left to promote
    assert await scalar(conn, "SELECT count(*) FROM work_orders") == 0
    assert await scalar(conn, "SELECT count(*) FROM notifications") == 0
    # nothing lost: every alarm is recorded, the device ones marked inhibited by the gateway's
    gw_id = await scalar(conn, "SELECT id FROM alarms WHERE rule = 'gateway_offline'")
    cur = await conn.execute("SELECT count(*), bool_and(inhibited), bool_and(inhibited_by = %s), bool_or(active) "
                             "FROM alarms WHERE rule <> 'gateway_offline'", (gw_id,))
    assert await cur.fetchone() == (7, True, True, False)
    assert await scalar(conn, "SELECT count(*) FROM alarm_trail WHERE action = 'inhibited'") == 7


async def test_a_long_outage_is_one_order_listing_the_devices_and_one_notification(full: Any,
                                                                                  clock: ManualClock) -> None:
    conn, _gateway, _device = full
    policy = default_policy()
    await webhooks(conn)
    await conn.execute("UPDATE gateways SET online = false WHERE code = 'gw1'")
    assert await watch(conn, policy, clock) == ["held"]
    for device, kind, rule in DEVICES[:3]:  # some device alarms reach the cloud while the gateway is away
        clock.advance(timedelta(seconds=5))
        await apply_event(conn, policy, comm(clock, device, kind, rule), clock.now())
    clock.advance(policy.inhibition.grace)
    assert await watch(conn, policy, clock) == ["announced"]
    assert await watch(conn, policy, clock) == []
    cur = await conn.execute("SELECT priority, device, description FROM work_orders")
    orders = await cur.fetchall()
    assert len(orders) == 1
    priority, device, description = orders[0]
    assert (priority, device) == ("P1", "gw1")
    assert "受影响设备 3 台" in description
    assert "affected devices (3)" in description
    assert all(d in description for d, _k, _r in DEVICES[:3])
    # one notification: the butler's, and one alarm.raised webhook (the gateway's), nothing per device
    cur = await conn.execute("SELECT event, channel, count(*) FROM notifications GROUP BY 1, 2 ORDER BY 1, 2")
    notes = await cur.fetchall()
    assert [n for n in notes if n[1] == "inbox"] == [("work_order.assigned", "inbox", 1)]
    assert ("alarm.raised", "webhook", 1) in notes
    before = await scalar(conn, "SELECT count(*) FROM notifications")
    # more device alarms after the order opened: listed on it, nobody notified again
    for device, kind, rule in DEVICES[3:]:
        clock.advance(timedelta(seconds=5))
        assert (await apply_event(conn, policy, comm(clock, device, kind, rule), clock.now())).outcome == "inhibited"
    assert await scalar(conn, "SELECT count(*) FROM work_orders") == 1
    assert await scalar(conn, "SELECT count(*) FROM notifications") == before
    description = await scalar(conn, "SELECT description FROM work_orders")
    assert "affected devices (7)" in description
    assert "pump-1 (pump-offline)" in description
    assert await scalar(conn, "SELECT count(*) FROM work_order_trail WHERE action = 'device_affected'") == 4

    # the gateway comes back; most devices recover, lift-1 stays dead
    clock.advance(timedelta(minutes=10))
    await gateway_back(conn, clock)
    assert await watch(conn, policy, clock) == ["cleared"]
    for device, kind, rule in DEVICES[1:]:
        clock.advance(timedelta(seconds=1))
        await apply_event(conn, policy, comm(clock, device, kind, rule, "clear"), clock.now())
    assert await watch(conn, policy, clock) == []  # within the grace: lift-1 still waits
    clock.advance(policy.inhibition.grace)
    await gateway_back(conn, clock)  # its heartbeat
    results = await check_gateways(conn, policy, clock.now(), HEARTBEAT)
    assert [(r.outcome, r.work_order_opened) for r in results] == [("promoted", True)]
    cur = await conn.execute("SELECT device, priority FROM work_orders ORDER BY id")
    assert await cur.fetchall() == [("gw1", "P1"), ("lift-1", "P2")]
    cur = await conn.execute("SELECT device, inhibited FROM alarms WHERE active ORDER BY device")
    assert await cur.fetchall() == [("lift-1", False)]  # a normal alarm now (inhibited_by kept as history)
    assert await scalar(conn, "SELECT count(*) FROM alarms WHERE inhibited AND NOT active") == 6


async def test_device_offline_while_the_gateway_is_up_works_as_before(full: Any, clock: ManualClock) -> None:
    conn, _gateway, _device = full
    policy = default_policy()
    assert await watch(conn, policy, clock) == []
    result = await apply_event(conn, policy, comm(clock, "lift-1", "elevator", "elevator-offline"), clock.now())
    assert (result.outcome, result.work_order_opened) == ("raised", True)
    assert await scalar(conn, "SELECT priority FROM work_orders WHERE device = 'lift-1'") == "P2"
    assert await scalar(conn, "SELECT count(*) FROM notifications WHERE channel = 'inbox'") == 1
    # a non-communication alarm during an outage is not inhibited: the fault is real whatever the uplink
    await conn.execute("UPDATE gateways SET online = false WHERE code = 'gw1'")
    assert await watch(conn, policy, clock) == ["held"]
    trapped = AlarmEvent(community="cp", device="lift-2", rule="elevator-entrapment", state="raise",
                         ts=to_ms(clock.now()), severity="critical", work_order=True, gateway="gw1",
                         device_kind="elevator", labels={"priority": "emergency"})
    result = await apply_event(conn, policy, trapped, clock.now())
    assert (result.outcome, result.work_order_opened) == ("raised", True)


async def test_inhibition_can_be_switched_off(full: Any, clock: ManualClock) -> None:
    conn, _gateway, _device = full
    policy = default_policy().model_copy(update={"inhibition": default_policy().inhibition.model_copy(
        update={"enabled": False})})
    await conn.execute("UPDATE gateways SET online = false WHERE code = 'gw1'")
    assert await watch(conn, policy, clock) == ["raised"]
    result = await apply_event(conn, policy, comm(clock, "lift-1", "elevator", "elevator-offline"), clock.now())
    assert result.outcome == "raised"
    assert await scalar(conn, "SELECT count(*) FROM work_orders") == 2


async def status(conn: psycopg.AsyncConnection[Any], clock: ManualClock, sessions: int) -> None:
    """A status message as ingest stores it: online, with the edge's uplink session count."""
    await conn.execute(
        "UPDATE gateways SET online = true, last_seen = %s, status = %s WHERE code = 'gw1'",
        (clock.now(), Jsonb({"state": "online", "health": {"uplink": {"connected": True, "sessions": sessions}}})))


async def test_a_reconnect_too_short_for_the_watchdog_still_groups_the_device_alarms(full: Any,
                                                                                    clock: ManualClock) -> None:
    """A broker restarted in 20 s: no last will, the heartbeat never timed out, so no gateway alarm;
    the edge's new uplink session (its status, published before the outbox drains) says it."""
    conn, _gateway, _device = full
    policy = default_policy()
    await webhooks(conn)
    await status(conn, clock, sessions=1)
    assert await watch(conn, policy, clock) == []  # first sight of the count: not a reconnect
    clock.advance(timedelta(seconds=40))
    await status(conn, clock, sessions=2)  # reconnected; the drained outbox follows at once
    for device, kind, rule in DEVICES:
        clock.advance(timedelta(seconds=1))
        assert (await apply_event(conn, policy, comm(clock, device, kind, rule), clock.now())).outcome == "inhibited"
    assert await watch(conn, policy, clock) == []  # the watchdog's pass sees the same change: nothing new
    for device, kind, rule in DEVICES[1:]:
        clock.advance(timedelta(seconds=1))
        await apply_event(conn, policy, comm(clock, device, kind, rule, "clear"), clock.now())
    assert await scalar(conn, "SELECT count(*) FROM work_orders") == 0
    assert await scalar(conn, "SELECT count(*) FROM notifications") == 0
    cur = await conn.execute("SELECT active, announced_at FROM alarms WHERE rule = 'gateway_offline'")
    assert await cur.fetchall() == [(False, None)]  # the short outage, recorded, never announced
    # after the grace lift-1 is still silent: a genuine fault, its own order
    clock.advance(policy.inhibition.grace)
    await status(conn, clock, sessions=2)
    results = await check_gateways(conn, policy, clock.now(), HEARTBEAT)
    assert [(r.outcome, r.work_order_opened) for r in results] == [("promoted", True)]
    assert await scalar(conn, "SELECT device FROM work_orders") == "lift-1"
    # long after the reconnect, a device alarm is an ordinary one again
    clock.advance(timedelta(minutes=10))
    await status(conn, clock, sessions=2)
    assert await watch(conn, policy, clock) == []
    result = await apply_event(conn, policy, comm(clock, "gate-1", "gate", "gate-offline"), clock.now())
    assert (result.outcome, result.work_order_opened) == ("raised", True)


async def test_through_ingest_rows_the_edge_labels_make_the_alarm_a_communication_alarm(
        full: Any, clock: ManualClock) -> None:
    """The same grouping on the processor's path: ``alarm_events`` rows as ingest writes them, the
    rules library's ``category: communication`` label, the gateway from the batch."""
    conn, gateway, _device = full
    policy = default_policy()
    await conn.execute("UPDATE gateways SET online = false WHERE code = 'gw1'")
    assert await watch(conn, policy, clock) == ["held"]
    for seq, (device, kind, rule) in enumerate(DEVICES[:3], start=1):
        await conn.execute(
            """INSERT INTO alarm_events (gateway_id, seq, device_code, rule, state, severity, ts, message, work_order,
                                         labels)
               VALUES (%s, %s, %s, %s, 'raise', 'major', %s, 'silent', true, %s)""",
            (gateway, seq, device, rule, clock.now(),
             Jsonb({"category": "communication", "priority": "normal", "kind": kind})))
    results = await process_batch(conn, policy, clock.now())
    assert [r.outcome for r in results] == ["inhibited"] * 3
    assert await scalar(conn, "SELECT count(*) FROM work_orders") == 0


async def test_an_agent_start_is_not_a_reconnect(full: Any, clock: ManualClock) -> None:
    """Issue 24: an agent's first status says ``sessions: 0`` (counted before its first session is)
    and its first heartbeat ``1``. A watchdog pass between the two must not date a reconnect, or a
    meter already silent at the start is held for the grace; a reconnect (1 → 2) still groups, and
    a restarted agent (2 → 0 → 1, too quick for the watchdog to see an outage) is not one."""
    conn, _gateway, _device = full
    policy = default_policy()

    async def statuses(*counts: int) -> None:
        for sessions in counts:
            clock.advance(timedelta(seconds=5))
            await status(conn, clock, sessions=sessions)
            assert await watch(conn, policy, clock) == []

    await statuses(0, 1)
    result = await apply_event(conn, policy, comm(clock, "meter-1", "meter", "meter-offline"), clock.now())
    assert (result.outcome, result.work_order_opened) == ("raised", True)
    await statuses(2)
    result = await apply_event(conn, policy, comm(clock, "lift-1", "elevator", "elevator-offline"), clock.now())
    assert result.outcome == "inhibited"
    clock.advance(timedelta(seconds=1))
    result = await apply_event(conn, policy, comm(clock, "lift-1", "elevator", "elevator-offline", "clear"),
                               clock.now())
    assert result.outcome == "cleared"
    clock.advance(policy.inhibition.grace)
    await statuses(0, 1)
    result = await apply_event(conn, policy, comm(clock, "pump-1", "pump", "pump-offline"), clock.now())
    assert (result.outcome, result.work_order_opened) == ("raised", True)
