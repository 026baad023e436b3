"""Apply alarm events to the ``alarms`` table, open work orders, and damp flapping.

Everything for one event happens in ONE transaction, serialised per device by a transaction-scoped
advisory lock (shared with resident reports, so a report and an alarm cannot both open an order),
and backed by unique indexes: one *current* row per identity (device, rule), one open work order
per alarm. So two copies of an event arriving together (broker
redelivery, two ingest workers) produce one alarm and one work order — the failure peers have
when creation is not transactional.

Idempotency by event time: an event whose device timestamp is not newer than the last one applied
to that alarm is a duplicate (or stale, out of order) and changes nothing.

Flapping: a cleared alarm raised again within ``policy.flap_window`` (device time) is *reopened*
— same row, ``flaps`` + 1, same work order, no new notification. Later raises start a new episode
(the old row is archived with ``current = false``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cloud.alarms.assets import device_info, lock_device
from cloud.alarms.model import SEVERITY_RANK, AlarmEvent
from cloud.notify.outbox import notify_webhooks
from cloud.workorders import repo as wo_repo
from cloud.workorders.actors import Actor
from cloud.workorders.errors import NotFound
from cloud.workorders.policy import Policy
from cloud.workorders.states import BEFORE_ON_SITE, Action, State
from guanjia.clock import from_ms

log = logging.getLogger(__name__)

Outcome = Literal["raised", "updated", "severity", "reopened", "cleared", "duplicate", "stale", "ignored"]


@dataclass(frozen=True, slots=True)
class Result:
    outcome: Outcome
    alarm_id: int | None = None
    work_order_id: int | None = None
    work_order_opened: bool = False


def _actor(event: AlarmEvent) -> Actor:
    if event.source == "edge":
        return Actor("edge", None, event.gateway or "-", "edge")
    return Actor.system(event.source)


async def _trail(conn: AsyncConnection[Any], alarm_id: int, at: datetime, action: str, actor: Actor,
                 severity: str | None = None, note: str = "", data: dict[str, Any] | None = None) -> None:
    await conn.execute(
        "INSERT INTO alarm_trail (alarm_id, at, action, actor, severity, note, data) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (alarm_id, at, action, actor.label, severity, note, Jsonb(data or {})),
    )


async def apply_event(conn: AsyncConnection[Any], policy: Policy, event: AlarmEvent, now: datetime) -> Result:
    """Apply one event in its own transaction (a savepoint if the caller already has one)."""
    async with conn.transaction():
        return await _apply(conn, policy, event, now)


async def apply_locked(conn: AsyncConnection[Any], policy: Policy, event: AlarmEvent, now: datetime) -> Result:
    """Like :func:`apply_event`, inside the caller's transaction, which already holds
    :func:`cloud.alarms.assets.lock_device` for the event's device (the processor's hot path)."""
    return await _apply(conn, policy, event, now, locked=True)


async def _apply(conn: AsyncConnection[Any], policy: Policy, event: AlarmEvent, now: datetime,
                 locked: bool = False) -> Result:
    if not locked:
        await lock_device(conn, event.community, event.device)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM alarms WHERE community = %s AND device = %s AND rule = %s AND current FOR UPDATE",
            (event.community, event.device, event.rule))
        row = await cur.fetchone()
    at = from_ms(event.ts)
    if event.state == "clear":
        return await _clear(conn, policy, event, row, at, now)
    if row is None:
        return await _insert(conn, policy, event, at, now)
    if event.ts <= row["last_event_ms"]:
        return Result("duplicate" if row["active"] else "stale", row["id"])
    if row["active"]:
        return await _update(conn, event, row, at, now)
    if row["cleared_at"] is not None and at - row["cleared_at"] <= policy.flap_window:
        return await _reopen(conn, policy, event, row, at, now)
    await conn.execute("UPDATE alarms SET current = false, updated_at = %s WHERE id = %s", (now, row["id"]))
    await _trail(conn, row["id"], now, "archived", _actor(event), note="raised again after the flap window")
    return await _insert(conn, policy, event, at, now)


async def _insert(conn: AsyncConnection[Any], policy: Policy, event: AlarmEvent, at: datetime,
                  now: datetime) -> Result:
    kind, building = event.device_kind, event.building
    if kind is None or building is None:
        info = await device_info(conn, event.community, event.device)
        kind, building = kind or info.kind, building or info.building
    wants = policy.wants_work_order(event.work_order, event.rule, kind)
    actor = _actor(event)
    async with conn.cursor(row_factory=dict_row) as cur:
        # the alarm and its first trail entry in one round trip
        await cur.execute(
            """WITH a AS (
                 INSERT INTO alarms (community, gateway, device, rule, source, severity, device_kind, building, active,
                     message, value, labels, work_order, raised_at, last_raised_at, last_event_ms, updated_at)
                 VALUES (%(community)s, %(gateway)s, %(device)s, %(rule)s, %(source)s, %(severity)s, %(kind)s,
                         %(building)s, true, %(message)s, %(value)s, %(labels)s, %(wants)s, %(at)s, %(at)s,
                         %(ts)s, %(now)s) RETURNING *),
               t AS (INSERT INTO alarm_trail (alarm_id, at, action, actor, severity, note, data)
                     SELECT id, %(now)s, 'raised', %(actor)s, %(severity)s, %(message)s, %(data)s FROM a)
               SELECT * FROM a""",
            {"community": event.community, "gateway": event.gateway, "device": event.device, "rule": event.rule,
             "source": event.source, "severity": event.severity, "kind": kind, "building": building,
             "message": event.message, "value": Jsonb(event.value), "labels": Jsonb(event.labels), "wants": wants,
             "at": at, "ts": event.ts, "now": now, "actor": actor.label,
             "data": Jsonb({"value": event.value, "ts": event.ts})},
        )
        alarm = await cur.fetchone()
    assert alarm is not None
    payload = {"alarm": _alarm_payload(alarm)}
    await notify_webhooks(conn, event.community, "alarm.raised", payload, now, alarm_id=alarm["id"],
                          dedup=f"a{alarm['id']}:raised")
    wo_id, opened = await _ensure_work_order(conn, policy, alarm, now, fresh=True) if wants else (None, False)
    return Result("raised", alarm["id"], wo_id, opened)


async def _ensure_work_order(conn: AsyncConnection[Any], policy: Policy, alarm: dict[str, Any],
                             now: datetime, fresh: bool = False) -> tuple[int | None, bool]:
    if not fresh:  # a row inserted by this transaction cannot have an order yet
        existing = await wo_repo.open_for_alarm(conn, alarm["id"])
        if existing is not None:
            return existing["id"], False
    async with conn.cursor(row_factory=dict_row) as cur:
        # an earlier episode of the same fault still has an unfinished order: that one covers it
        await cur.execute(
            """SELECT w.id FROM work_orders w JOIN alarms a ON a.id = w.alarm_id
               WHERE a.community = %s AND a.device = %s AND a.rule = %s
                 AND w.state NOT IN ('resolved', 'closed', 'cancelled')
               ORDER BY w.id LIMIT 1 FOR UPDATE OF w""",
            (alarm["community"], alarm["device"], alarm["rule"]))
        earlier = await cur.fetchone()
    if earlier is not None:
        await wo_repo.add_trail(conn, earlier["id"], now, "alarm_reraised", Actor.system(f"alarm:{alarm['id']}"),
                                note="the fault was raised again (new alarm episode) while this order is open",
                                data={"alarm_id": alarm["id"]})
        return earlier["id"], False
    kind = alarm["device_kind"]
    priority = policy.priority_for(alarm["severity"], alarm["rule"], kind, (alarm["labels"] or {}).get("priority"))
    override = policy.override_for(alarm["rule"], kind)
    title = (override.title if override and override.title else None) or alarm["message"] or alarm["rule"]
    new = wo_repo.NewOrder(
        community=alarm["community"], title=_titled(alarm["device"], title), origin="alarm", priority=priority,
        building=alarm["building"], device=alarm["device"], device_kind=kind, skill=policy.skill_for(kind),
        alarm_id=alarm["id"], description=alarm["message"], auto_close=policy.auto_close(alarm["rule"], kind),
    )
    wo = await wo_repo.open_order(conn, policy, new, now, Actor.system(f"alarm:{alarm['id']}"))
    if wo is None:  # lost a race that the advisory lock should have prevented: the index held
        existing = await wo_repo.open_for_alarm(conn, alarm["id"])
        return (existing["id"] if existing else None), False
    return wo["id"], True


async def _update(conn: AsyncConnection[Any], event: AlarmEvent, row: dict[str, Any], at: datetime,
                  now: datetime) -> Result:
    changed = event.severity != row["severity"]
    await conn.execute(
        """UPDATE alarms SET last_raised_at = %s, raise_count = raise_count + 1, last_event_ms = %s, severity = %s,
               message = %s, value = %s, updated_at = %s WHERE id = %s""",
        (at, event.ts, event.severity, event.message or row["message"], Jsonb(event.value), now, row["id"]),
    )
    if not changed:
        return Result("updated", row["id"])
    up = SEVERITY_RANK.get(event.severity, 0) > SEVERITY_RANK.get(row["severity"], 0)
    await _trail(conn, row["id"], now, "severity", _actor(event), event.severity,
                 f"{row['severity']} → {event.severity}", {"from": row["severity"], "to": event.severity})
    wo = await wo_repo.open_for_alarm(conn, row["id"])
    if wo is not None:
        await wo_repo.add_trail(conn, wo["id"], now, "alarm_severity", _actor(event),
                                note=f"alarm severity {row['severity']} → {event.severity}")
    if up and row["acknowledged"]:  # a worse condition needs a fresh acknowledgement
        await conn.execute("UPDATE alarms SET acknowledged = false WHERE id = %s", (row["id"],))
    return Result("severity", row["id"], wo["id"] if wo else None)


async def _reopen(conn: AsyncConnection[Any], policy: Policy, event: AlarmEvent, row: dict[str, Any],
                  at: datetime, now: datetime) -> Result:
    await conn.execute(
        """UPDATE alarms SET active = true, cleared_at = NULL, flaps = flaps + 1, raise_count = raise_count + 1,
               last_raised_at = %s, last_event_ms = %s, severity = %s, message = %s, value = %s, updated_at = %s
           WHERE id = %s""",
        (at, event.ts, event.severity, event.message or row["message"], Jsonb(event.value), now, row["id"]),
    )
    await _trail(conn, row["id"], now, "reopened", _actor(event), event.severity,
                 f"raised again within the flap window ({row['flaps'] + 1} flaps)", {"flaps": row["flaps"] + 1})
    wo = await wo_repo.open_for_alarm(conn, row["id"])
    if wo is not None:
        await wo_repo.add_trail(conn, wo["id"], now, "alarm_reopened", _actor(event),
                                note=f"alarm raised again (flap {row['flaps'] + 1})")
        return Result("reopened", row["id"], wo["id"])
    if row["work_order"]:  # its order was closed by a person: the fault is back, so a new order
        wo_id, opened = await _ensure_work_order(conn, policy, row, now)
        return Result("reopened", row["id"], wo_id, opened)
    return Result("reopened", row["id"])


async def _clear(conn: AsyncConnection[Any], policy: Policy, event: AlarmEvent, row: dict[str, Any] | None,
                 at: datetime, now: datetime) -> Result:
    if row is None:
        return Result("ignored")
    if not row["active"]:
        return Result("duplicate" if event.ts <= row["last_event_ms"] else "ignored", row["id"])
    if event.ts < row["last_event_ms"]:
        return Result("stale", row["id"])
    await conn.execute(
        "UPDATE alarms SET active = false, cleared_at = %s, last_event_ms = %s, updated_at = %s WHERE id = %s",
        (at, event.ts, now, row["id"]),
    )
    actor = _actor(event)
    await _trail(conn, row["id"], now, "cleared", actor, row["severity"], event.message)
    await notify_webhooks(conn, row["community"], "alarm.cleared", {"alarm": _alarm_payload(row) | {"active": False}},
                          now, alarm_id=row["id"], dedup=f"a{row['id']}:cleared:{event.ts}")
    wo = await wo_repo.open_for_alarm(conn, row["id"])
    if wo is None:
        return Result("cleared", row["id"])
    await conn.execute("UPDATE work_orders SET alarm_cleared_at = %s, updated_at = %s WHERE id = %s",
                       (at, now, wo["id"]))
    if wo["auto_close"] and State(wo["state"]) in BEFORE_ON_SITE:
        await wo_repo.transition(conn, policy, wo["id"], Action.auto_close, actor, now,
                                 note="alarm cleared before anyone was on site; the rule allows auto-close")
    else:
        # cleared is not repaired: the order stays open until a person confirms the fix
        await wo_repo.add_trail(conn, wo["id"], now, "alarm_cleared", actor,
                                note="alarm cleared by itself; the order stays open until a person confirms the fix")
    return Result("cleared", row["id"], wo["id"])


def _alarm_payload(alarm: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": alarm["id"], "device": alarm["device"], "rule": alarm["rule"], "severity": alarm["severity"],
        "active": alarm["active"], "message": alarm["message"], "gateway": alarm["gateway"],
        "raised_at": alarm["raised_at"].isoformat(),
    }


async def acknowledge(conn: AsyncConnection[Any], alarm_id: int, actor: Actor, now: datetime,
                      note: str = "") -> dict[str, Any]:
    """Acknowledge (idempotent: acknowledging twice records nothing new)."""
    async with conn.transaction(), conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM alarms WHERE id = %s FOR UPDATE", (alarm_id,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"alarm {alarm_id} does not exist")
        if row["acknowledged"]:
            return row
        await cur.execute(
            "UPDATE alarms SET acknowledged = true, acked_at = %s, acked_by = %s, updated_at = %s WHERE id = %s "
            "RETURNING *", (now, actor.label, now, alarm_id))
        updated = await cur.fetchone()
        await _trail(conn, alarm_id, now, "acknowledged", actor, row["severity"], note)
    assert updated is not None
    return updated


def _titled(device: str, text: str) -> str:
    """Work-order titles start with the device once, whether or not the rule message already does."""
    return (text if text.startswith(device) else f"{device}: {text}")[:200]
