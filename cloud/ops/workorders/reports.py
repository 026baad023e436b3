"""Resident reports (报事报修), staff-opened orders, and residents' ratings.

A report about a device that already has an open work order is *linked* to it (the butler sees
both, the resident is told the repair is already under way); a report about a device with an
active alarm that had no order opens one tied to that alarm. Otherwise a new order is opened.
Every report is kept in ``resident_reports`` either way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import IllegalTransition, InvalidRequest, NotAllowed
from cloud.ops.model.policy import Policy, Priority
from cloud.ops.model.states import Action, State
from cloud.ops.notify.masking import mask_text
from cloud.ops.notify.outbox import notify_butler, notify_residents
from cloud.ops.workorders import repo
from cloud.ops.workorders.performance import recompute
from cloud.queries.assets import device_info, lock_device


@dataclass(slots=True)
class Report:
    community: str
    text: str
    building: str | None = None
    device: str | None = None
    location: str = ""
    photos: list[str] = field(default_factory=list)
    reporter_name: str = ""
    reporter_phone: str = ""
    reporter_user_id: int | None = None
    title: str | None = None
    priority: Priority | None = None


async def submit_report(conn: AsyncConnection[Any], policy: Policy, report: Report, now: datetime,
                        actor: Actor, origin: str = "resident") -> tuple[repo.WorkOrder, bool]:
    """Record a report; return (its work order, linked to an existing one?)."""
    if not report.text.strip():
        raise InvalidRequest("a report needs a description")
    async with conn.transaction():
        existing: repo.WorkOrder | None = None
        alarm: dict[str, Any] | None = None
        if report.device:
            await lock_device(conn, report.community, report.device)
            async with conn.cursor(row_factory=dict_row) as cur:
                await cur.execute(
                    """SELECT * FROM work_orders WHERE device = %s AND community = %s
                         AND state NOT IN ('resolved', 'closed', 'cancelled')
                       ORDER BY created_at LIMIT 1 FOR UPDATE""",
                    (report.device, report.community),
                )
                existing = await cur.fetchone()
                if existing is None:
                    await cur.execute(
                        """SELECT * FROM alarms WHERE device = %s AND community = %s AND current AND active
                           ORDER BY raised_at LIMIT 1""", (report.device, report.community))
                    alarm = await cur.fetchone()
        if existing is not None:
            wo, linked = existing, True
            await repo.add_trail(conn, wo["id"], now, "report_linked", actor, note=mask_text(report.text)[:500])
            if wo["assignee_id"]:
                await notify_butler(conn, wo["assignee_id"], wo, "work_order.report_linked", now, reveal_pii=True)
        else:
            info = await device_info(conn, report.community, report.device) if report.device else None
            kind = (alarm or {}).get("device_kind") or (info.kind if info else None)
            new = repo.NewOrder(
                community=report.community, title=mask_text(report.title or report.text.strip().splitlines()[0])[:120],
                origin=origin, priority=report.priority or (
                    policy.priority_for(alarm["severity"], alarm["rule"], kind) if alarm else policy.manual_priority),
                building=report.building or (alarm or {}).get("building") or (info.building if info else None),
                device=report.device, device_kind=kind, skill=policy.skill_for(kind),
                alarm_id=alarm["id"] if alarm else None, description=report.text, location=report.location,
                photos=report.photos, reporter_name=report.reporter_name or None,
                reporter_phone=report.reporter_phone or None, reporter_user_id=report.reporter_user_id,
            )
            opened = await repo.open_order(conn, policy, new, now, actor)
            if opened is not None:
                wo, linked = opened, False
            else:  # the alarm got its order in between: link to it
                assert alarm is not None
                found = await repo.open_for_alarm(conn, alarm["id"])
                assert found is not None
                wo, linked = found, True
                await repo.add_trail(conn, wo["id"], now, "report_linked", actor, note=mask_text(report.text)[:500])
        await conn.execute(
            """INSERT INTO resident_reports (community, building, device, text, location, photos, reporter_name,
                   reporter_phone, reporter_user_id, work_order_id, linked, created_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
            (report.community, report.building, report.device, report.text, report.location, report.photos,
             report.reporter_name, report.reporter_phone, report.reporter_user_id, wo["id"], linked, now),
        )
        if linked and report.reporter_user_id is not None:
            # a new order told its reporter in open_order; a linked report is news to this resident only
            await notify_residents(conn, wo, "received", now, butler_id=wo["assignee_id"],
                                   only_user=report.reporter_user_id)
    return wo, linked


async def rate(conn: AsyncConnection[Any], policy: Policy, wo_id: int, stars: int, comment: str, actor: Actor,
               now: datetime) -> repo.WorkOrder:
    """A resident rates a resolved order (1–5 + comment); the order is then closed and the
    assignee's performance and star level are recomputed."""
    if not 1 <= stars <= 5:
        raise InvalidRequest("stars must be between 1 and 5")
    async with conn.transaction():
        wo = await repo.get(conn, wo_id, lock=True)
        if wo["state"] not in (State.resolved, State.closed):
            raise IllegalTransition(wo["state"], "rate", ["rate (only once resolved)"])
        if actor.kind == "user" and actor.role == "resident" and wo["reporter_user_id"] not in (None, actor.id):
            raise NotAllowed("only the resident who reported it may rate this order")
        cur = await conn.execute(
            """INSERT INTO work_order_ratings (work_order_id, butler_id, stars, comment, rated_by, created_at)
               VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (work_order_id) DO NOTHING RETURNING 1""",
            (wo_id, wo["assignee_id"], stars, comment, actor.id, now),
        )
        if await cur.fetchone() is None:
            raise InvalidRequest(f"work order {wo_id} is already rated")
        await repo.add_trail(conn, wo_id, now, "rated", actor, note=comment[:500], data={"stars": stars})
        if wo["state"] == State.resolved:
            wo = await repo.transition(conn, policy, wo_id, Action.close, Actor.system("rating"), now,
                                       note=f"closed by the rating of {actor.label}")
        if wo["assignee_id"]:
            await recompute(conn, wo["assignee_id"], now, policy.stars)
    return wo


async def _ensure_reporter(conn: AsyncConnection[Any], wo: repo.WorkOrder, actor: Actor, what: str) -> None:
    """A resident acts only on an order they reported or whose report was linked to it."""
    if actor.role != "resident" or wo["reporter_user_id"] == actor.id:
        return
    cur = await conn.execute("SELECT 1 FROM resident_reports WHERE work_order_id = %s AND reporter_user_id = %s",
                             (wo["id"], actor.id))
    if await cur.fetchone() is None:
        raise NotAllowed(f"only a resident who reported it may {what}")


async def like(conn: AsyncConnection[Any], policy: Policy, wo_id: int, actor: Actor, now: datetime) -> int:
    """A resident likes the butler who did their repair (点赞): once per resident and order, only
    the order's reporter (or a resident whose report was linked to it), only once it is resolved.
    The like counts towards the butler's star level (``policy.stars.likes``); returns the butler."""
    async with conn.transaction():
        wo = await repo.get(conn, wo_id, lock=True)
        await _ensure_reporter(conn, wo, actor, "like this repair")
        if wo["state"] not in (State.resolved, State.closed) or wo["assignee_id"] is None:
            raise IllegalTransition(wo["state"], "like", ["like (once resolved)"])
        cur = await conn.execute(
            """INSERT INTO butler_likes (butler_id, user_id, work_order_id, created_at) VALUES (%s, %s, %s, %s)
               ON CONFLICT (work_order_id, user_id) DO NOTHING RETURNING 1""",
            (wo["assignee_id"], actor.id, wo_id, now))
        if await cur.fetchone() is None:
            raise InvalidRequest(f"you already liked work order {wo_id}")
        await repo.add_trail(conn, wo_id, now, "liked", actor)
        await recompute(conn, wo["assignee_id"], now, policy.stars)
    return int(wo["assignee_id"])


async def reopen(conn: AsyncConnection[Any], policy: Policy, wo_id: int, reason: str, actor: Actor,
                 now: datetime) -> repo.WorkOrder:
    """A resident says the repair did not hold, within ``policy.resident_reopen_window`` of its
    resolution; return the order that carries on.

    A *resolved* order goes back to its butler (``reopen``: assigned, clocks restarted). A *closed*
    one (closing is final: its rating and the butler's record stand) gets a follow-up order that
    names it, so the new work is measured on its own; both are on the trail."""
    reason = reason.strip()
    if not reason:
        raise InvalidRequest("say what is still wrong")
    async with conn.transaction():
        wo = await repo.get(conn, wo_id, lock=True)
        await _ensure_reporter(conn, wo, actor, "reopen this order")
        if wo["state"] not in (State.resolved, State.closed) or wo["resolved_at"] is None:
            raise IllegalTransition(wo["state"], "reopen", ["reopen (only once resolved)"])
        if now > wo["resolved_at"] + policy.resident_reopen_window:
            days = policy.resident_reopen_window.total_seconds() / 86400
            raise InvalidRequest(f"work order {wo_id} was resolved more than {days:g} days ago; please file a new "
                                 "report")
        if wo["state"] == State.resolved:
            return await repo.transition(conn, policy, wo_id, Action.reopen, actor, now, note=mask_text(reason)[:500])
        new = repo.NewOrder(
            community=wo["community"], title=f"#{wo_id} {wo['title']}"[:120],
            title_zh=f"#{wo_id} {wo['title_zh'] or wo['title']}"[:120], origin="resident",
            priority=wo["priority"], building=wo["building"], device=wo["device"], device_kind=wo["device_kind"],
            skill=wo["skill"], description=reason, location=wo["location"], reporter_name=wo["reporter_name"],
            reporter_phone=wo["reporter_phone"], reporter_user_id=actor.id if actor.role == "resident" else
            wo["reporter_user_id"])
        follow_up = await repo.open_order(conn, policy, new, now, actor)
        assert follow_up is not None  # no alarm on it: nothing to conflict with
        await repo.add_trail(conn, wo_id, now, "followed_up", actor, note=mask_text(reason)[:500],
                             data={"work_order": follow_up["id"]})
        return follow_up
