"""Work orders against the database: open, assign, transition, escalate — each in the caller's
transaction, each change recorded in ``work_order_trail`` and announced through the outbox.

Duplicates are impossible by construction: one open order per alarm is a partial unique index,
and creation is ``INSERT … ON CONFLICT DO NOTHING``; transitions lock the row (``FOR UPDATE``)
and validate against :mod:`cloud.ops.model.states` before writing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cloud.db.rows import insert_sql
from cloud.ops.model.actors import SYSTEM_ROUTING, Actor
from cloud.ops.model.errors import InvalidRequest, NotAllowed, NotFound
from cloud.ops.model.policy import Policy, Priority
from cloud.ops.model.states import FINAL, Action, State, next_state
from cloud.ops.notify.masking import mask_text
from cloud.ops.notify.outbox import notify_butler, notify_residents, notify_webhooks, render_work_order
from cloud.ops.points.ledger import award_task
from cloud.ops.policies.repo import effective
from cloud.ops.routing.contracts import holder, work_of
from cloud.ops.routing.repo import route

log = logging.getLogger(__name__)

WorkOrder = dict[str, Any]


@dataclass(slots=True)
class NewOrder:
    """What is needed to open a work order (from an alarm, a resident report or staff)."""

    community: str
    title: str
    """In English; ``title_zh`` in Chinese (:mod:`guanjia.core.lang`). A text someone typed (a
    resident's report, a staff order) is one text: ``title_zh`` left ``None`` stores ``title`` twice."""
    origin: str
    priority: Priority
    title_zh: str | None = None
    building: str | None = None
    device: str | None = None
    device_kind: str | None = None
    skill: str = "general"
    alarm_id: int | None = None
    description: str = ""
    location: str = ""
    photos: list[str] = field(default_factory=list)
    reporter_name: str | None = None
    reporter_phone: str | None = None
    reporter_user_id: int | None = None
    auto_close: bool = False
    respond: timedelta | None = None
    """The order's own response commitment (a policy override's ``respond``), instead of its priority's."""
    due: datetime | None = None
    """A planned order's due instant (:mod:`cloud.ops.maintenance`): its on-site and resolve
    deadlines, so escalation climbs the chain when it passes; the respond clock stays the priority's."""


class WorkOrderRow(NamedTuple):
    """A new ``work_orders`` row as inserted: the field order *is* the INSERT's column list
    (:func:`cloud.db.rows.insert_sql`), so values cannot slip into the wrong column. The columns
    left out keep their defaults (assignee, escalation level, the lifecycle timestamps)."""

    community: str
    building: str | None
    device: str | None
    device_kind: str | None
    skill: str
    alarm_id: int | None
    origin: str
    title: str
    title_zh: str
    description: str
    location: str
    photos: list[str]
    reporter_name: str | None
    reporter_phone: str | None
    reporter_user_id: int | None
    priority: str
    state: str
    auto_close: bool
    respond_due: datetime
    on_site_due: datetime
    resolve_due: datetime
    next_escalation_at: datetime | None
    created_at: datetime
    updated_at: datetime


# the order and its first trail entry in one round trip; a second open order for the same alarm
# is refused by the partial unique index (then ``w`` is empty and nothing is written)
_OPEN_SQL = f"""WITH w AS (
     {insert_sql("work_orders", WorkOrderRow)}
     ON CONFLICT (alarm_id) WHERE alarm_id IS NOT NULL AND state NOT IN ('closed', 'cancelled')
     DO NOTHING RETURNING *),
   t AS (INSERT INTO work_order_trail (work_order_id, at, action, to_state, actor, actor_butler_id, note, data)
         SELECT id, %s, 'opened', 'new', %s, %s, %s, %s FROM w)
   SELECT * FROM w"""


class TrailRow(NamedTuple):
    """One ``work_order_trail`` entry as inserted by :func:`add_trail` (field order = column order)."""

    work_order_id: int
    at: datetime
    action: str
    from_state: str | None
    to_state: str | None
    actor: str
    actor_butler_id: int | None
    note: str
    lat: float | None
    lon: float | None
    data: Jsonb


_TRAIL_SQL = insert_sql("work_order_trail", TrailRow)


async def get(conn: AsyncConnection[Any], wo_id: int, *, lock: bool = False) -> WorkOrder:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT * FROM work_orders WHERE id = %s{' FOR UPDATE' if lock else ''}", (wo_id,))
        row = await cur.fetchone()
    if row is None:
        raise NotFound(f"work order {wo_id} does not exist")
    return row


async def add_trail(
    conn: AsyncConnection[Any],
    wo_id: int,
    now: datetime,
    action: str,
    actor: Actor,
    *,
    from_state: str | None = None,
    to_state: str | None = None,
    note: str = "",
    lat: float | None = None,
    lon: float | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    await conn.execute(_TRAIL_SQL, TrailRow(
        work_order_id=wo_id, at=now, action=action, from_state=from_state, to_state=to_state, actor=actor.label,
        actor_butler_id=actor.butler_id, note=note, lat=lat, lon=lon, data=Jsonb(data or {})))


async def add_photo(conn: AsyncConnection[Any], wo_id: int, ref: str) -> None:
    """Append a stored photo's reference to the order (the caller records the trail entry)."""
    await conn.execute("UPDATE work_orders SET photos = photos || %s WHERE id = %s", ([ref], wo_id))


async def open_order(conn: AsyncConnection[Any], policy: Policy, new: NewOrder, now: datetime,
                     actor: Actor) -> WorkOrder | None:
    """Insert, route and announce a work order; ``None`` when the alarm already has an open one.
    The deadlines are the community's (:func:`cloud.ops.policies.repo.effective`), set by its admin."""
    policy = await effective(conn, policy, new.community)
    sla = policy.sla(new.priority, now)
    if new.respond is not None:
        sla = sla.model_copy(update={"respond_due": now + new.respond})
    if new.due is not None:
        sla = sla.model_copy(update={"respond_due": min(sla.respond_due, new.due), "on_site_due": new.due,
                                     "resolve_due": new.due})
    trail_data = {"origin": new.origin, "priority": new.priority, "alarm_id": new.alarm_id,
                  "respond_due": sla.respond_due.isoformat(), "on_site_due": sla.on_site_due.isoformat(),
                  "resolve_due": sla.resolve_due.isoformat()}
    row = WorkOrderRow(
        community=new.community, building=new.building, device=new.device, device_kind=new.device_kind,
        skill=new.skill, alarm_id=new.alarm_id, origin=new.origin, title=new.title,
        title_zh=new.title_zh or new.title, description=new.description,
        location=new.location, photos=new.photos, reporter_name=new.reporter_name,
        reporter_phone=new.reporter_phone, reporter_user_id=new.reporter_user_id, priority=new.priority,
        state=State.new.value, auto_close=new.auto_close, respond_due=sla.respond_due, on_site_due=sla.on_site_due,
        resolve_due=sla.resolve_due, next_escalation_at=sla.respond_due, created_at=now, updated_at=now)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_OPEN_SQL, (*row, now, actor.label, actor.butler_id, mask_text(new.description)[:500],
                                      Jsonb(trail_data)))
        wo = await cur.fetchone()
    if wo is None:
        return None
    _, _, payload = render_work_order(wo, "work_order.opened", reveal_pii=False)
    await notify_webhooks(conn, wo["community"], "work_order.opened", payload, now,
                          work_order_id=wo["id"], alarm_id=wo["alarm_id"], dedup=f"wo{wo['id']}:opened")
    if wo["reporter_user_id"] is not None:
        await notify_residents(conn, wo, "received", now)
    return await auto_assign(conn, policy, wo, now)


async def auto_assign(conn: AsyncConnection[Any], policy: Policy, wo: WorkOrder, now: datetime,
                      exclude: frozenset[int] = frozenset()) -> WorkOrder:
    """Route ``wo`` to the best butler and assign it; leave it ``new``/``rejected`` if nobody fits
    (the escalation clock still runs, and escalation notifies the chain).

    A valid contract covering the order's skill and kind of work sends it to the contract holder's
    field staff instead (:mod:`cloud.ops.routing.contracts`); for a rescue the butler routing
    would pick is told first, in the trail and their inbox, and the holder gets the order."""
    work = work_of(wo["origin"], wo["priority"])
    held = await holder(conn, wo["community"], wo["skill"], work, wo["building"], now, exclude)
    if held is not None:
        # the butler is told once, when the rescue is first routed (not again on each escalation)
        if work == "rescue" and wo["state"] == State.new and (first := await route(
                conn, wo["community"], wo["skill"], wo["building"], now, exclude)) is not None:
            await notify_butler(conn, first.butler_id, wo, "work_order.rescue_called", now, reveal_pii=True,
                                dedup=f"wo{wo['id']}:rescue:{first.butler_id}")
            await add_trail(conn, wo["id"], now, "butler_first", SYSTEM_ROUTING,
                            note=f"管家先到场安抚，救援交合同单位 / butler first on site; rescue by the contract "
                                 f"holder {held.contractor}", data={"butler_id": first.butler_id})
        action = Action.assign if wo["state"] in (State.new, State.rejected) else Action.reassign
        return await _assign(conn, policy, wo, held.butler_id, now, SYSTEM_ROUTING, action, note=held.reason)
    choice = await route(conn, wo["community"], wo["skill"], wo["building"], now, exclude)
    if choice is None:
        await add_trail(conn, wo["id"], now, "unroutable", SYSTEM_ROUTING,
                        note=f"no butler in {wo['community']} for skill {wo['skill']}")
        log.warning("work order %s: no butler in %s for skill %s", wo["id"], wo["community"], wo["skill"])
        return wo
    action = Action.assign if wo["state"] in (State.new, State.rejected) else Action.reassign
    return await _assign(conn, policy, wo, choice.butler_id, now, SYSTEM_ROUTING, action, note=choice.reason)


async def _assign(conn: AsyncConnection[Any], policy: Policy, wo: WorkOrder, butler_id: int, now: datetime,
                  actor: Actor, action: Action, note: str = "") -> WorkOrder:
    target = next_state(wo["state"], action)
    escalate_every = policy.priorities[wo["priority"]].escalate_every
    next_at = wo["respond_due"] if wo["respond_due"] > now else now + escalate_every
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """WITH u AS (
                 UPDATE work_orders SET state = %s, assignee_id = %s, assigned_by = %s, escalation_level = 0,
                     next_escalation_at = %s, updated_at = %s WHERE id = %s RETURNING *),
               t AS (INSERT INTO work_order_trail (work_order_id, at, action, from_state, to_state, actor,
                                                   actor_butler_id, note, data)
                     SELECT id, %s, %s, %s, %s, %s, %s, %s, %s FROM u)
               SELECT * FROM u""",
            (target, butler_id, actor.butler_id, next_at, now, wo["id"],
             now, action.value, wo["state"], target, actor.label, actor.butler_id, note,
             Jsonb({"assignee_id": butler_id})),
        )
        updated = await cur.fetchone()
    assert updated is not None
    await notify_butler(conn, butler_id, updated, "work_order.assigned", now, reveal_pii=True,
                        dedup=f"wo{wo['id']}:assign:{updated['updated_at'].timestamp()}:{butler_id}")
    await notify_residents(conn, updated, "assigned", now, butler_id=butler_id)
    return updated


async def _check_actor(conn: AsyncConnection[Any], wo: WorkOrder, action: Action, actor: Actor,
                       assignee_id: int | None) -> None:
    """Butlers act on their own orders; staff (admin/engineer/system/team lead) on any. Volunteers
    receive work only from a full-time butler or staff; residents only report and rate."""
    if actor.role == "resident" and action is not Action.reopen:
        # reopen is theirs only through reports.reopen, which checks the order is theirs and the window
        raise NotAllowed("residents report faults and rate repairs; they do not move work orders")
    if actor.kind == "butler":
        cur = await conn.execute("SELECT kind, role FROM butlers WHERE id = %s", (actor.butler_id,))
        me = await cur.fetchone()
        if me is None:
            raise NotAllowed("unknown butler")
        kind, role = me
        if role == "butler" and wo["assignee_id"] != actor.butler_id:
            raise NotAllowed(f"work order {wo['id']} is not assigned to you")
        if action in (Action.assign, Action.reassign) and role == "butler" and kind != "full_time":
            raise NotAllowed("only full-time butlers hand work to others")
    if assignee_id is not None:
        cur = await conn.execute("SELECT kind, active, community FROM butlers WHERE id = %s", (assignee_id,))
        target = await cur.fetchone()
        if target is None or not target[1]:
            raise InvalidRequest(f"butler {assignee_id} does not exist or is inactive")
        if target[2] != wo["community"]:
            raise InvalidRequest(f"butler {assignee_id} does not serve community {wo['community']}")
        if target[0] == "volunteer" and actor.kind == "system":
            raise NotAllowed("volunteer butlers receive work only from a full-time butler")


async def transition(
    conn: AsyncConnection[Any],
    policy: Policy,
    wo_id: int,
    action: Action | str,
    actor: Actor,
    now: datetime,
    *,
    note: str = "",
    lat: float | None = None,
    lon: float | None = None,
    assignee_id: int | None = None,
) -> WorkOrder:
    """Apply ``action`` to work order ``wo_id``; raise IllegalTransition / NotAllowed / NotFound."""
    wo = await get(conn, wo_id, lock=True)
    target = next_state(wo["state"], action)  # raises IllegalTransition naming the allowed actions
    act = Action(action)
    policy = await effective(conn, policy, wo["community"])
    await _check_actor(conn, wo, act, actor, assignee_id)
    if act in (Action.assign, Action.reassign):
        if assignee_id is None:
            exclude = frozenset({wo["assignee_id"]}) if wo["assignee_id"] else frozenset()
            wo_routed = await auto_assign(conn, policy, wo, now, exclude)
            if wo_routed["state"] == wo["state"]:
                raise InvalidRequest("no other butler is available; name one with assignee_id")
            return wo_routed
        return await _assign(conn, policy, wo, assignee_id, now, actor, act, note)

    clocks = policy.priorities[wo["priority"]]
    sets: dict[str, Any] = {"state": target.value, "updated_at": now}

    def deadline(due: datetime) -> datetime:
        return due if due > now else now + clocks.escalate_every

    if act is Action.accept:
        sets |= {"accepted_at": now, "escalation_level": 0, "next_escalation_at": deadline(wo["on_site_due"])}
    elif act is Action.depart:
        pass
    elif act in (Action.arrive, Action.resume):
        if act is Action.arrive:
            sets["on_site_at"] = now
        sets |= {"escalation_level": 0, "next_escalation_at": deadline(wo["resolve_due"])}
    elif act is Action.hold:
        sets["next_escalation_at"] = None  # waiting for parts/supplier: the clock is paused, trail says why
    elif act is Action.resolve:
        sets |= {"resolved_at": now, "next_escalation_at": None}
    elif act is Action.reopen:
        sets |= {"resolved_at": None, "escalation_level": 0, "next_escalation_at": now + clocks.escalate_every}
    elif act in (Action.close, Action.cancel, Action.auto_close):
        sets |= {"closed_at": now, "next_escalation_at": None}
    elif act is Action.reject:
        sets["next_escalation_at"] = now
    columns = ", ".join(f"{k} = %s" for k in sets)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"UPDATE work_orders SET {columns} WHERE id = %s RETURNING *", (*sets.values(), wo_id))
        updated = await cur.fetchone()
    assert updated is not None
    await add_trail(conn, wo_id, now, act.value, actor, from_state=wo["state"], to_state=target.value,
                    note=note, lat=lat, lon=lon)
    if act is Action.resolve:  # a volunteer's resolved task earns points (once per order)
        await award_task(conn, policy, updated, actor, now)
    step = _RESIDENT_STEP.get(act)
    if step is not None:  # the residents behind the order follow it on their phone
        await notify_residents(conn, updated, step, now, butler_id=updated["assignee_id"])
    if act is Action.reject:
        # route to someone else at once; if nobody, it stays rejected and escalation picks it up
        return await auto_assign(conn, policy, updated, now, frozenset({wo["assignee_id"]} - {None}))
    if act in (Action.resolve, Action.close, Action.cancel, Action.auto_close):
        _, _, payload = render_work_order(updated, f"work_order.{target.value}", reveal_pii=False)
        await notify_webhooks(conn, updated["community"], f"work_order.{target.value}", payload, now,
                              work_order_id=wo_id, alarm_id=updated["alarm_id"], dedup=f"wo{wo_id}:{act.value}")
    return updated


#: the actions a resident hears about (assignment is told by :func:`_assign`, receipt by :func:`open_order`)
_RESIDENT_STEP: dict[Action, str] = {
    Action.depart: "on_the_way", Action.arrive: "on_site", Action.resolve: "resolved", Action.close: "closed",
    Action.auto_close: "closed", Action.reopen: "reopened", Action.cancel: "cancelled"}


async def open_for_alarm(conn: AsyncConnection[Any], alarm_id: int) -> WorkOrder | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT * FROM work_orders WHERE alarm_id = %s AND state NOT IN ('closed', 'cancelled') FOR UPDATE",
            (alarm_id,),
        )
        return await cur.fetchone()


async def trail(conn: AsyncConnection[Any], wo_id: int) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM work_order_trail WHERE work_order_id = %s ORDER BY id", (wo_id,))
        return await cur.fetchall()


def is_final(wo: WorkOrder) -> bool:
    return State(wo["state"]) in FINAL


def overdue(wo: WorkOrder, now: datetime) -> dict[str, bool]:
    """Which SLA clocks of ``wo`` are broken at ``now`` (for lists and the dashboard)."""
    accepted = wo["accepted_at"] or (now if wo["state"] in ("new", "assigned", "rejected") else None)
    on_site = wo["on_site_at"] or now
    resolved = wo["resolved_at"] or now
    return {
        "respond": accepted is not None and accepted > wo["respond_due"],
        "on_site": on_site > wo["on_site_due"] and wo["state"] != "cancelled",
        "resolve": resolved > wo["resolve_due"] and wo["state"] != "cancelled",
    }

