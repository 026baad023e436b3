"""Apply alarm events to the ``alarms`` table, open work orders, and damp flapping.

Everything for one event happens in ONE transaction, serialised per device by a transaction-scoped
advisory lock (shared with resident reports, so a report and an alarm cannot both open an order),
and backed by unique indexes: one *current* row per identity (device, rule), one open work order
per alarm. So two copies of an event arriving together (broker
redelivery, two ingest workers) produce one alarm and one work order — the failure peers have
when creation is not transactional.

Order of occurrence, not of arrival (:mod:`cloud.ops.alarms.ordering`): the alarm row keeps the stamp
(edge event time, outbox seq and its space) of the last change applied to it. An event that is
not newer changes nothing: the same stamp is a ``duplicate``, an older one is ``late`` (recorded in
the trail, never a state change, an order or a notification). Every newer event advances the
stamp, also one that changes nothing visible (a clear of a cleared alarm), and a clear with no
alarm to clear is *remembered* as a cleared row that never raised (``raise_count = 0``): the raise
it overtook then arrives late and is recorded as such, instead of raising a ghost alarm with a
work order while the device is fine.

Flapping: a cleared alarm raised again within ``policy.flap_window`` (device time) is *reopened*
— same row, ``flaps`` + 1, same work order, no new notification. Later raises start a new episode
(the old row is archived with ``current = false``).

One incident, one ticket (``policy.inhibition``): a gateway's ``gateway_offline`` alarm is
recorded at once but *held* — its order and notification wait ``grace`` (the offline watchdog
announces it, :func:`announce`); a communication alarm of a device behind a gateway that is down,
or back for less than ``grace``, is recorded *inhibited* by the gateway's alarm (no order, no
notification; the device is listed on the gateway's order). Announcing is one step for every
alarm: ``announced_at`` set, the ``alarm.raised`` webhook, the order per policy; a clear of an
alarm never announced notifies nobody.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cloud.ops.alarms.ordering import Stamp, compare, seq_space
from cloud.ops.alarms.uplink import reconnected_at
from cloud.ops.model.actors import Actor
from cloud.ops.model.alarms import GATEWAY_OFFLINE_RULE, SEVERITY_RANK, AlarmEvent, with_zh, zh_label
from cloud.ops.model.errors import NotFound
from cloud.ops.model.policy import Policy
from cloud.ops.model.states import BEFORE_ON_SITE, Action, State
from cloud.ops.notify.outbox import notify_webhooks
from cloud.ops.workorders import repo as wo_repo
from cloud.queries.assets import device_info, lock_device
from guanjia.core.clock import from_ms, to_ms
from rules.ruleset import MESSAGE_ZH_LABEL

log = logging.getLogger(__name__)

Outcome = Literal["raised", "held", "inhibited", "updated", "severity", "reopened", "cleared", "cleared_first",
                  "duplicate", "late", "ignored", "announced", "promoted"]
"""``held``: a gateway alarm raised, its order and notification wait the grace; ``inhibited``: a
device's communication alarm raised under its gateway's alarm; ``cleared_first``: a clear with no
alarm to clear, remembered; ``late``: older than the alarm's last applied change, recorded only;
``ignored``: a newer clear of an alarm already cleared; ``announced`` / ``promoted``: a held
gateway alarm / an inhibited device alarm announced after the grace (offline watchdog)."""


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


_LABELS_ZH = ("labels = CASE WHEN %s::text IS NULL THEN labels "
              "ELSE coalesce(labels, '{}'::jsonb) || jsonb_build_object('message_zh', %s::text) END")
"""The SET clause that keeps the alarm's Chinese message with its English one when a newer event
updates it (parameters: the event's ``message_zh`` twice; none keeps the stored one)."""


def _stamp(event: AlarmEvent) -> Stamp:
    space = seq_space(event.gateway, event.incarnation) if event.seq is not None and event.source == "edge" else None
    return Stamp(event.ts, event.seq if space is not None else None, space)


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
    :func:`cloud.queries.assets.lock_device` for the event's device (the processor's hot path)."""
    return await _apply(conn, policy, event, now, locked=True)


async def _apply(conn: AsyncConnection[Any], policy: Policy, event: AlarmEvent, now: datetime,
                 locked: bool = False) -> Result:
    event = with_zh(event)  # the message in both languages, whatever wrote it (guanjia.core.lang)
    if not locked:
        await lock_device(conn, event.community, event.device)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM alarms WHERE community = %s AND device = %s AND rule = %s AND current FOR UPDATE",
            (event.community, event.device, event.rule))
        row = await cur.fetchone()
    at = from_ms(event.ts)
    stamp = _stamp(event)
    if row is not None:
        order = compare(stamp, Stamp.of_row(row))
        if order == "same":
            return Result("duplicate", row["id"])
        if order == "older":
            await _late(conn, event, row, stamp, at, now)
            return Result("late", row["id"])
    if event.state == "clear":
        return await _clear(conn, policy, event, row, stamp, at, now)
    if row is None:
        return await _insert(conn, policy, event, stamp, at, now)
    if row["active"]:
        return await _update(conn, event, row, stamp, at, now)
    if row["cleared_at"] is not None and at - row["cleared_at"] <= policy.flap_window:
        return await _reopen(conn, policy, event, row, stamp, at, now)
    await conn.execute("UPDATE alarms SET current = false, updated_at = %s WHERE id = %s", (now, row["id"]))
    await _trail(conn, row["id"], now, "archived", _actor(event), note="raised again after the flap window")
    return await _insert(conn, policy, event, stamp, at, now)


async def _late(conn: AsyncConnection[Any], event: AlarmEvent, row: dict[str, Any], stamp: Stamp, at: datetime,
                now: datetime) -> None:
    """An event older than the alarm's last applied change: recorded, never applied. The raise of
    a row that so far only saw its clear fills in when the episode began (still cleared)."""
    data = {"state": event.state, "ts": event.ts, "seq": stamp.seq, "space": stamp.space,
            "last": {"ts": row["last_event_ms"], "seq": row["last_seq"], "space": row["last_seq_space"]}}
    cur = await conn.execute(
        "SELECT 1 FROM alarm_trail WHERE alarm_id = %s AND action = 'late' AND data @> %s LIMIT 1",
        (row["id"], Jsonb({"state": event.state, "ts": event.ts})))
    if await cur.fetchone() is not None:
        return  # this late event was recorded already (it was redelivered)
    await _trail(conn, row["id"], now, "late", _actor(event), event.severity,
                 f"{event.state} from {at.isoformat()} arrived after a newer change; not applied", data)
    if event.state == "raise" and row["raise_count"] == 0:
        await conn.execute(
            f"""UPDATE alarms SET raised_at = %s, last_raised_at = %s, raise_count = 1, severity = %s, message = %s,
                   {_LABELS_ZH}, value = %s, updated_at = %s WHERE id = %s""",
            (at, at, event.severity, event.message or row["message"], event.message_zh, event.message_zh,
             Jsonb(event.value), now, row["id"]))


def _is_communication(policy: Policy, event: AlarmEvent) -> bool:
    return (policy.inhibition.enabled and event.source == "edge" and event.gateway is not None
            and event.device != event.gateway and policy.inhibition.is_communication(event.rule, event.labels))


async def inhibitor(conn: AsyncConnection[Any], policy: Policy, community: str, gateway: str,
                    now: datetime) -> dict[str, Any] | None:
    """The gateway's ``gateway_offline`` alarm if it inhibits now: active, or cleared less than
    ``grace`` ago (the gateway is reconnecting: its outbox drains, its devices come back)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT * FROM alarms WHERE community = %s AND device = %s AND rule = %s AND current
                 AND (active OR cleared_at > %s)""",
            (community, gateway, GATEWAY_OFFLINE_RULE, now - policy.inhibition.grace))
        return await cur.fetchone()


async def _inhibit_under(conn: AsyncConnection[Any], policy: Policy, event: AlarmEvent,
                         now: datetime) -> dict[str, Any] | None:
    """The inhibiting gateway alarm for ``event`` (a communication alarm), under the gateway's lock
    (so the watchdog announcing that alarm lists this device, or sees it listed)."""
    if not _is_communication(policy, event):
        return None
    assert event.gateway is not None
    await lock_device(conn, event.community, event.gateway)
    gw = await inhibitor(conn, policy, event.community, event.gateway, now)
    if gw is not None:
        return gw
    since = await reconnected_at(conn, event.community, event.gateway, now)
    if since is None or since <= now - policy.inhibition.grace:
        return None
    return await _reconnect_episode(conn, policy, event.community, event.gateway, since, now)


async def _reconnect_episode(conn: AsyncConnection[Any], policy: Policy, community: str, gateway: str,
                             since: datetime, now: datetime) -> dict[str, Any]:
    """A ``gateway_offline`` episode for a reconnect the watchdog did not see as an outage (see
    :mod:`cloud.ops.alarms.uplink`): raised and cleared at the reconnect, never announced; the alarms
    it inhibits are grouped under it. The caller holds the gateway's lock."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT id FROM alarms WHERE community = %s AND device = %s AND rule = %s AND current "
                          "FOR UPDATE", (community, gateway, GATEWAY_OFFLINE_RULE))
        old = await cur.fetchone()
        if old is not None:  # an earlier, settled episode (an active or recent one would inhibit already)
            await cur.execute("UPDATE alarms SET current = false, updated_at = %s WHERE id = %s", (now, old["id"]))
        message = f"gateway {gateway} uplink reconnected at {since.isoformat()}"
        labels = zh_label(f"网关 {gateway} 上行链路于 {since.isoformat()} 重连")
        await cur.execute(
            """INSERT INTO alarms (community, gateway, device, rule, source, severity, device_kind, active, message,
                   labels, work_order, raised_at, last_raised_at, cleared_at, last_event_ms, hold_until, updated_at)
               VALUES (%s, %s, %s, %s, 'system', 'major', 'gateway', false, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               RETURNING *""",
            (community, gateway, gateway, GATEWAY_OFFLINE_RULE, message, Jsonb(labels),
             policy.wants_work_order(True, GATEWAY_OFFLINE_RULE, "gateway"), since, since, since, to_ms(since),
             since + policy.inhibition.grace, now))
        episode = await cur.fetchone()
    assert episode is not None
    await _trail(conn, episode["id"], now, "held", Actor.system("uplink"), "major",
                 "短暂断线后重连（遗嘱与心跳超时均未发现），不派单、不通知；期间设备通讯告警归入此处 / "
                 "a reconnect after an outage too short for the last will or the heartbeat timeout: no order, "
                 "nobody notified; the devices' communication alarms are grouped here",
                 {"reconnected_at": since.isoformat()})
    return episode


async def _insert(conn: AsyncConnection[Any], policy: Policy, event: AlarmEvent, stamp: Stamp, at: datetime,
                  now: datetime) -> Result:
    kind, building = event.device_kind, event.building
    if kind is None or building is None:
        info = await device_info(conn, event.community, event.device)
        kind, building = kind or info.kind, building or info.building
    wants = policy.wants_work_order(event.work_order, event.rule, kind)
    actor = _actor(event)
    held = policy.inhibition.enabled and event.rule == GATEWAY_OFFLINE_RULE
    gw = None if held else await _inhibit_under(conn, policy, event, now)
    announce_now = not held and gw is None
    async with conn.cursor(row_factory=dict_row) as cur:
        # the alarm and its first trail entry in one round trip
        await cur.execute(
            """WITH a AS (
                 INSERT INTO alarms (community, gateway, device, rule, source, severity, device_kind, building, active,
                     message, value, labels, work_order, raised_at, last_raised_at, last_event_ms, last_seq,
                     last_seq_space, inhibited, inhibited_by, hold_until, announced_at, updated_at)
                 VALUES (%(community)s, %(gateway)s, %(device)s, %(rule)s, %(source)s, %(severity)s, %(kind)s,
                         %(building)s, true, %(message)s, %(value)s, %(labels)s, %(wants)s, %(at)s, %(at)s,
                         %(ts)s, %(seq)s, %(space)s, %(inhibited)s, %(by)s, %(hold)s, %(announced)s, %(now)s)
                 RETURNING *),
               t AS (INSERT INTO alarm_trail (alarm_id, at, action, actor, severity, note, data)
                     SELECT id, %(now)s, 'raised', %(actor)s, %(severity)s, %(note)s, %(data)s FROM a)
               SELECT * FROM a""",
            {"community": event.community, "gateway": event.gateway, "device": event.device, "rule": event.rule,
             "source": event.source, "severity": event.severity, "kind": kind, "building": building,
             "message": event.message, "note": _both(event), "value": Jsonb(event.value),
             "labels": Jsonb(event.labels), "wants": wants,
             "at": at, "ts": event.ts, "seq": stamp.seq, "space": stamp.space, "inhibited": gw is not None,
             "by": gw["id"] if gw else None, "hold": now + policy.inhibition.grace if held else None,
             "announced": now if announce_now else None, "now": now, "actor": actor.label,
             "data": Jsonb({"value": event.value, "ts": event.ts, "seq": stamp.seq})},
        )
        alarm = await cur.fetchone()
    assert alarm is not None
    if held:
        await _trail(conn, alarm["id"], now, "held", actor, note=(
            f"等待 {_span(policy)} 宽限期后再派单和通知 / order and notification held for the "
            f"{_span(policy)} reconnect grace"), data={"hold_until": (now + policy.inhibition.grace).isoformat()})
        return Result("held", alarm["id"])
    if gw is not None:
        await _inhibited(conn, alarm, gw, actor, now)
        return Result("inhibited", alarm["id"])
    covering = await _earlier_order(conn, alarm, now) if wants else None
    if covering is not None:
        # the same fault's earlier episode still has its order open: like a reopen, no new notification
        # (so whether reordering lets a raise land inside or outside the flap window, nobody hears twice)
        return Result("raised", alarm["id"], covering, False)
    payload = {"alarm": _alarm_payload(alarm)}
    await notify_webhooks(conn, event.community, "alarm.raised", payload, now, alarm_id=alarm["id"],
                          dedup=f"a{alarm['id']}:raised")
    wo_id, opened = await _ensure_work_order(conn, policy, alarm, now, fresh=True) if wants else (None, False)
    return Result("raised", alarm["id"], wo_id, opened)


def _both(event: AlarmEvent) -> str:
    """The event's message for the trail, a free-text note read by both: ``中文 / English``."""
    return f"{event.message_zh} / {event.message}" if event.message_zh else event.message


def _span(policy: Policy) -> str:
    seconds = int(policy.inhibition.grace.total_seconds())
    return f"{seconds // 60} min" if seconds % 60 == 0 else f"{seconds} s"


async def _inhibited(conn: AsyncConnection[Any], alarm: dict[str, Any], gw: dict[str, Any], actor: Actor,
                     now: datetime) -> None:
    """Record ``alarm`` as inhibited by the gateway alarm ``gw`` and list it on the gateway's order."""
    await _trail(conn, alarm["id"], now, "inhibited", actor, alarm["severity"],
                 f"网关 {gw['device']} 离线或刚恢复，归入其告警 #{gw['id']} / inhibited by gateway "
                 f"{gw['device']} being offline or reconnecting (alarm #{gw['id']})", {"inhibited_by": gw["id"]})
    wo = await wo_repo.open_for_alarm(conn, gw["id"])
    if wo is not None:
        description = await gateway_description(conn, gw)
        await conn.execute("UPDATE work_orders SET description = %s, updated_at = %s WHERE id = %s",
                           (description, now, wo["id"]))
        await wo_repo.add_trail(conn, wo["id"], now, "device_affected", actor,
                                note=f"受影响设备 / affected device: {alarm['device']} ({alarm['rule']})",
                                data={"alarm_id": alarm["id"], "device": alarm["device"]})


async def gateway_description(conn: AsyncConnection[Any], gw: dict[str, Any]) -> str:
    """The gateway order's description: why, and every device whose alarm it groups (both languages)."""
    cur = await conn.execute(
        "SELECT device, string_agg(DISTINCT rule, ', ' ORDER BY rule) FROM alarms WHERE inhibited_by = %s "
        "GROUP BY device ORDER BY device", (gw["id"],))
    devices = [f"{device} ({rules})" for device, rules in await cur.fetchall()]
    zh = (gw["labels"] or {}).get(MESSAGE_ZH_LABEL) or gw["message"]
    head = f"网关 {gw['device']} 离线：{zh} / gateway {gw['device']} offline: {gw['message']}"
    if not devices:
        return f"{head}\n受影响设备：暂无上报 / affected devices: none reported yet"
    return f"{head}\n受影响设备 {len(devices)} 台 / affected devices ({len(devices)}): {'; '.join(devices)}"


async def announce(conn: AsyncConnection[Any], policy: Policy, alarm: dict[str, Any], now: datetime,
                   actor: Actor) -> tuple[int | None, bool]:
    """Announce an alarm that was held or inhibited (caller holds the device lock and has the row
    locked): ``announced_at``, not inhibited any more, the ``alarm.raised`` webhook, the order per
    policy. Returns (order id, opened)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("UPDATE alarms SET announced_at = %s, inhibited = false, updated_at = %s WHERE id = %s "
                          "RETURNING *", (now, now, alarm["id"]))
        fresh = await cur.fetchone()
    assert fresh is not None
    await _trail(conn, fresh["id"], now, "announced", actor, fresh["severity"],
                 "宽限期已过，告警仍在 / still active after the grace: announced")
    await notify_webhooks(conn, fresh["community"], "alarm.raised", {"alarm": _alarm_payload(fresh)}, now,
                          alarm_id=fresh["id"], dedup=f"a{fresh['id']}:raised")
    if not fresh["work_order"]:
        return None, False
    description = await gateway_description(conn, fresh) if fresh["rule"] == GATEWAY_OFFLINE_RULE else None
    return await _ensure_work_order(conn, policy, fresh, now, description=description)


async def _earlier_order(conn: AsyncConnection[Any], alarm: dict[str, Any], now: datetime) -> int | None:
    """An unfinished order of an earlier episode of the same fault covers this one (noted on it)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT w.id FROM work_orders w JOIN alarms a ON a.id = w.alarm_id
               WHERE a.community = %s AND a.device = %s AND a.rule = %s
                 AND w.state NOT IN ('resolved', 'closed', 'cancelled')
               ORDER BY w.id LIMIT 1 FOR UPDATE OF w""",
            (alarm["community"], alarm["device"], alarm["rule"]))
        earlier = await cur.fetchone()
    if earlier is None:
        return None
    await wo_repo.add_trail(conn, earlier["id"], now, "alarm_reraised", Actor.system(f"alarm:{alarm['id']}"),
                            note="the fault was raised again (new alarm episode) while this order is open",
                            data={"alarm_id": alarm["id"]})
    return int(earlier["id"])


async def _device_owner(conn: AsyncConnection[Any], community: str, device: str) -> int | None:
    """The resident a device belongs to (a call button's elderly resident): the order its alarm
    opens is theirs to follow, as if they had reported it (inbox steps with the butler's name)."""
    cur = await conn.execute("SELECT d.owner_user_id FROM devices d JOIN communities c ON c.id = d.community_id "
                             "WHERE c.code = %s AND d.code = %s", (community, device))
    row = await cur.fetchone()
    return int(row[0]) if row and row[0] is not None else None


async def _ensure_work_order(conn: AsyncConnection[Any], policy: Policy, alarm: dict[str, Any],
                             now: datetime, fresh: bool = False,
                             description: str | None = None) -> tuple[int | None, bool]:
    if not fresh:  # a row inserted by this transaction cannot have an order yet
        existing = await wo_repo.open_for_alarm(conn, alarm["id"])
        if existing is not None:
            return existing["id"], False
    earlier = await _earlier_order(conn, alarm, now)
    if earlier is not None:
        return earlier, False
    kind = alarm["device_kind"]
    priority = policy.priority_for(alarm["severity"], alarm["rule"], kind, (alarm["labels"] or {}).get("priority"))
    override = policy.override_for(alarm["rule"], kind)
    if override is not None and override.title and override.title_zh:
        title, title_zh = override.title, override.title_zh
    else:
        title = alarm["message"] or alarm["rule"]
        title_zh = (alarm["labels"] or {}).get(MESSAGE_ZH_LABEL) or title
    new = wo_repo.NewOrder(
        community=alarm["community"], title=_titled(alarm["device"], title),
        title_zh=_titled(alarm["device"], title_zh, "："), origin="alarm", priority=priority,
        building=alarm["building"], device=alarm["device"], device_kind=kind, skill=policy.skill_for(kind),
        alarm_id=alarm["id"], description=description or alarm["message"],
        auto_close=policy.auto_close(alarm["rule"], kind), respond=policy.respond_for(alarm["rule"], kind),
        reporter_user_id=await _device_owner(conn, alarm["community"], alarm["device"]),
    )
    wo = await wo_repo.open_order(conn, policy, new, now, Actor.system(f"alarm:{alarm['id']}"))
    if wo is None:  # lost a race that the advisory lock should have prevented: the index held
        existing = await wo_repo.open_for_alarm(conn, alarm["id"])
        return (existing["id"] if existing else None), False
    return wo["id"], True


async def _update(conn: AsyncConnection[Any], event: AlarmEvent, row: dict[str, Any], stamp: Stamp, at: datetime,
                  now: datetime) -> Result:
    changed = event.severity != row["severity"]
    await conn.execute(
        f"""UPDATE alarms SET last_raised_at = %s, raise_count = raise_count + 1, last_event_ms = %s, last_seq = %s,
               last_seq_space = %s, severity = %s, message = %s, {_LABELS_ZH}, value = %s, updated_at = %s
           WHERE id = %s""",
        (at, event.ts, stamp.seq, stamp.space, event.severity, event.message or row["message"], event.message_zh,
         event.message_zh, Jsonb(event.value), now, row["id"]),
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


async def _reopen(conn: AsyncConnection[Any], policy: Policy, event: AlarmEvent, row: dict[str, Any], stamp: Stamp,
                  at: datetime, now: datetime) -> Result:
    await conn.execute(
        f"""UPDATE alarms SET active = true, cleared_at = NULL, flaps = flaps + 1, raise_count = raise_count + 1,
               last_raised_at = %s, last_event_ms = %s, last_seq = %s, last_seq_space = %s, severity = %s,
               message = %s, {_LABELS_ZH}, value = %s, updated_at = %s
           WHERE id = %s""",
        (at, event.ts, stamp.seq, stamp.space, event.severity, event.message or row["message"], event.message_zh,
         event.message_zh, Jsonb(event.value), now, row["id"]),
    )
    actor = _actor(event)
    await _trail(conn, row["id"], now, "reopened", actor, event.severity,
                 f"raised again within the flap window ({row['flaps'] + 1} flaps)", {"flaps": row["flaps"] + 1})
    if row["announced_at"] is None:  # never announced: held, inhibited, or only its clear was seen
        if policy.inhibition.enabled and event.rule == GATEWAY_OFFLINE_RULE:
            await conn.execute("UPDATE alarms SET hold_until = %s WHERE id = %s",
                               (now + policy.inhibition.grace, row["id"]))
            return Result("held", row["id"])
        gw = await _inhibit_under(conn, policy, event, now)
        if gw is not None:
            await conn.execute("UPDATE alarms SET inhibited = true, inhibited_by = %s WHERE id = %s",
                               (gw["id"], row["id"]))
            await _inhibited(conn, row, gw, actor, now)
            return Result("inhibited", row["id"])
        wo_id, opened = await announce(conn, policy, row, now, actor)
        return Result("reopened", row["id"], wo_id, opened)
    wo = await wo_repo.open_for_alarm(conn, row["id"])
    if wo is not None:
        await wo_repo.add_trail(conn, wo["id"], now, "alarm_reopened", actor,
                                note=f"alarm raised again (flap {row['flaps'] + 1})")
        return Result("reopened", row["id"], wo["id"])
    if row["work_order"]:  # its order was closed by a person: the fault is back, so a new order
        wo_id, opened = await _ensure_work_order(conn, policy, row, now)
        return Result("reopened", row["id"], wo_id, opened)
    return Result("reopened", row["id"])


async def _clear(conn: AsyncConnection[Any], policy: Policy, event: AlarmEvent, row: dict[str, Any] | None,
                 stamp: Stamp, at: datetime, now: datetime) -> Result:
    actor = _actor(event)
    if row is None:
        return await _cleared_first(conn, policy, event, stamp, at, now)
    if not row["active"]:  # nothing to clear, but the stamp advances: an older raise is late from now on
        await conn.execute(
            "UPDATE alarms SET last_event_ms = %s, last_seq = %s, last_seq_space = %s, updated_at = %s WHERE id = %s",
            (event.ts, stamp.seq, stamp.space, now, row["id"]))
        return Result("ignored", row["id"])
    await conn.execute(
        """UPDATE alarms SET active = false, cleared_at = %s, last_event_ms = %s, last_seq = %s, last_seq_space = %s,
               updated_at = %s WHERE id = %s""",
        (at, event.ts, stamp.seq, stamp.space, now, row["id"]),
    )
    if row["announced_at"] is None:  # held or inhibited: it comes and goes without a word
        why = ("宽限期内恢复，未派单、未通知 / back within the grace: no order, nobody notified"
               if row["rule"] == GATEWAY_OFFLINE_RULE else
               "抑制期间清除，未派单、未通知 / cleared while inhibited: no order, nobody notified")
        await _trail(conn, row["id"], now, "cleared", actor, row["severity"], f"{_both(event)} — {why}".strip(" —"))
        return Result("cleared", row["id"])
    await _trail(conn, row["id"], now, "cleared", actor, row["severity"], _both(event))
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


async def _cleared_first(conn: AsyncConnection[Any], policy: Policy, event: AlarmEvent, stamp: Stamp, at: datetime,
                         now: datetime) -> Result:
    """A clear with no alarm to clear: its raise is still on the way (reordered after a restart) or
    was never sent. Remembered as a cleared row that never raised, so that raise is recognised as
    late when it comes; no order, no notification."""
    kind, building = event.device_kind, event.building
    if kind is None or building is None:
        info = await device_info(conn, event.community, event.device)
        kind, building = kind or info.kind, building or info.building
    cur = await conn.execute(
        """INSERT INTO alarms (community, gateway, device, rule, source, severity, device_kind, building, active,
               message, value, labels, work_order, raised_at, last_raised_at, cleared_at, raise_count, last_event_ms,
               last_seq, last_seq_space, updated_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, false, %s, %s, %s, %s, %s, %s, %s, 0, %s, %s, %s, %s)
           RETURNING id""",
        (event.community, event.gateway, event.device, event.rule, event.source, event.severity, kind, building,
         event.message, Jsonb(event.value), Jsonb(event.labels),
         policy.wants_work_order(event.work_order, event.rule, kind), at, at, at, event.ts, stamp.seq, stamp.space,
         now))
    row = await cur.fetchone()
    assert row is not None
    await _trail(conn, int(row[0]), now, "cleared", _actor(event), event.severity,
                 "先收到清除，尚未收到其触发；之后到达的更早触发不会再激活 / clear received before its raise; "
                 "an older raise arriving later will not activate it",
                 {"ts": event.ts, "seq": stamp.seq, "space": stamp.space})
    return Result("cleared_first", int(row[0]))


def _alarm_payload(alarm: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": alarm["id"], "device": alarm["device"], "rule": alarm["rule"], "severity": alarm["severity"],
        "active": alarm["active"], "message": alarm["message"],
        "message_zh": (alarm["labels"] or {}).get(MESSAGE_ZH_LABEL), "gateway": alarm["gateway"],
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


def _titled(device: str, text: str, sep: str = ": ") -> str:
    """Work-order titles start with the device once, whether or not the rule message already does
    (``sep``: the Chinese title takes the full-width colon)."""
    return (text if text.startswith(device) else f"{device}{sep}{text}")[:200]
