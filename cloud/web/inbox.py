"""Work orders as butlers and residents see them, and their one-tap actions.

Reads are tenant-scoped SQL over the WORKORDERS tables; every change goes through that part's
domain functions (:func:`cloud.ops.workorders.repo.transition`, :func:`cloud.ops.workorders.reports.submit_report`,
:func:`cloud.ops.workorders.reports.rate`) so the state machine, the trail, the SLA clocks and the
notifications stay in one place. Functions return an error message (or ``"not_found"``) instead
of raising, because the pages render them.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.auth.roles import Role
from cloud.auth.users import User, scope_params
from cloud.ops.model.actors import Actor
from cloud.ops.model.alarms import GATEWAY_OFFLINE_RULE
from cloud.ops.model.errors import WorkOrderError
from cloud.ops.model.policy import Policy
from cloud.ops.workorders import repo
from cloud.ops.workorders.reports import Report, rate, submit_report
from cloud.web import photos

log = logging.getLogger(__name__)

#: what a butler can tap, per state (the state machine decides whether it is legal)
ACTIONS: dict[str, str] = {"accept": "action.accept", "reject": "action.reject", "depart": "action.depart",
                           "arrive": "action.arrive", "hold": "action.hold", "resume": "action.resume",
                           "resolve": "action.resolve"}
BUTTONS: dict[str, tuple[str, ...]] = {
    "assigned": ("accept", "reject"), "accepted": ("depart", "arrive"), "on_the_way": ("arrive",),
    "on_site": ("resolve", "hold"), "on_hold": ("resume",), "rejected": (), "new": (),
}
_DONE = ("resolved", "closed", "cancelled")
_NEXT_DUE = """CASE WHEN w.state IN ('new', 'assigned', 'rejected') THEN w.respond_due
                    WHEN w.state IN ('accepted', 'on_the_way') THEN w.on_site_due ELSE w.resolve_due END"""


async def butler_of(conn: AsyncConnection[Any], user: User) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM butlers WHERE user_id = %s AND active ORDER BY id LIMIT 1", (user.id,))
        return await cur.fetchone()


async def inbox_orders(conn: AsyncConnection[Any], user: User, butler: dict[str, Any] | None,
                       limit: int = 200) -> list[dict[str, Any]]:
    """A butler's open orders, most urgent deadline first; staff without a butler record see every
    open order of their communities (the dispatcher's view)."""
    if butler is None and user.role is Role.butler:
        return []
    where = "w.assignee_id = %(butler)s" if butler is not None else "(%(all)s OR w.community = ANY(%(communities)s))"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"""SELECT w.*, {_NEXT_DUE} AS next_due, d.id AS device_id, d.name AS device_name,
                       coalesce(a.rule = %(gateway_rule)s, false) AS gateway_order
                  FROM work_orders w
                  LEFT JOIN communities c ON c.code = w.community
                  LEFT JOIN devices d ON d.community_id = c.id AND d.code = w.device
                  LEFT JOIN alarms a ON a.id = w.alarm_id
                 WHERE {where} AND w.state NOT IN ('resolved', 'closed', 'cancelled')
                 ORDER BY next_due, w.id LIMIT %(limit)s""",
            {**scope_params(user), "butler": butler["id"] if butler else None, "limit": limit,
             "gateway_rule": GATEWAY_OFFLINE_RULE})
        rows = await cur.fetchall()
    affected = await affected_devices(conn, [r["alarm_id"] for r in rows if r["gateway_order"]])
    for row in rows:
        row["buttons"] = BUTTONS.get(row["state"], ())
        row["affected"] = affected.get(row["alarm_id"], []) if row["gateway_order"] else None
    return rows


async def affected_devices(conn: AsyncConnection[Any], gateway_alarms: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Per gateway-offline alarm, the devices whose alarms it groups (inhibition): code, name,
    rules and whether one is still active. Why not the order's description: that is one
    bilingual string written for webhooks and e-mail; the inbox renders a list in the reader's
    language, and ``inhibited_by`` stays set after an alarm is promoted, so the list is the
    incident's whole history."""
    if not gateway_alarms:
        return {}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT a.inhibited_by AS gateway_alarm, a.device, min(d.name) AS name,
                      string_agg(DISTINCT a.rule, ', ' ORDER BY a.rule) AS rules, bool_or(a.active) AS active
                 FROM alarms a
                 LEFT JOIN communities c ON c.code = a.community
                 LEFT JOIN devices d ON d.community_id = c.id AND d.code = a.device
                WHERE a.inhibited_by = ANY(%s)
                GROUP BY a.inhibited_by, a.device ORDER BY a.inhibited_by, a.device""", (gateway_alarms,))
        out: dict[int, list[dict[str, Any]]] = {}
        for row in await cur.fetchall():
            out.setdefault(row.pop("gateway_alarm"), []).append(row)
    return out


async def _visible_order(conn: AsyncConnection[Any], user: User, wo_id: int) -> dict[str, Any] | None:
    if not -2**63 <= wo_id < 2**63:
        return None
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM work_orders WHERE id = %s", (wo_id,))
        wo = await cur.fetchone()
    if wo is None or not user.can_see(wo["community"]):
        return None
    if user.role is Role.resident and wo["reporter_user_id"] != user.id:
        # a resident sees the orders they reported, including those their report was linked to
        cur = await conn.execute("SELECT 1 FROM resident_reports WHERE work_order_id = %s AND reporter_user_id = %s",
                                 (wo_id, user.id))
        if await cur.fetchone() is None:
            return None
    return wo


async def order_trail(conn: AsyncConnection[Any], user: User, wo_id: int) -> list[dict[str, Any]] | None:
    if await _visible_order(conn, user, wo_id) is None:
        return None
    return await repo.trail(conn, wo_id)


def _actor(user: User, butler: dict[str, Any] | None) -> Actor:
    if butler is not None and user.role is Role.butler:
        return Actor.butler(butler["id"], butler["name"])
    return Actor("user", user.id, user.name, user.role.value)


async def act(conn: AsyncConnection[Any], user: User, wo_id: int, action: str, note: str, photo: bytes,
              run_dir: Path, *, policy: Policy, now: dt.datetime) -> str | None:
    """Apply a one-tap action (with optional note and photo); None on success, else a message.

    ``policy`` and ``now`` are the app's (``GUANJIA_WO_POLICY`` and the service clock): accepting
    here computes the same deadlines as accepting through the API."""
    wo = await _visible_order(conn, user, wo_id)
    if wo is None or user.role is Role.resident:
        return "not_found"
    butler = await butler_of(conn, user)
    actor = _actor(user, butler)
    try:
        ref = photos.store(run_dir, wo["community"], photo) if photo else None
        async with conn.transaction():
            await repo.transition(conn, policy, wo_id, action, actor, now, note=note)
            if ref is not None:
                await repo.add_trail(conn, wo_id, now, "photo", actor, note=note, data={"photo": ref})
                await conn.execute("UPDATE work_orders SET photos = photos || %s WHERE id = %s", ([ref], wo_id))
    except photos.PhotoRejected as exc:
        return str(exc)
    except WorkOrderError as exc:
        log.info("work order %s: %s by %s refused: %s", wo_id, action, actor.label, exc)
        return str(exc)
    return None


async def resident_orders(conn: AsyncConnection[Any], user: User, limit: int = 100) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT w.id, w.title, w.state, w.created_at, w.resolved_at, w.community, r.stars, r.comment,
                      b.name AS butler
                 FROM work_orders w
                 LEFT JOIN work_order_ratings r ON r.work_order_id = w.id
                 LEFT JOIN butlers b ON b.id = w.assignee_id
                WHERE w.reporter_user_id = %(u)s
                   OR w.id IN (SELECT work_order_id FROM resident_reports WHERE reporter_user_id = %(u)s)
                ORDER BY w.created_at DESC LIMIT %(limit)s""", {"u": user.id, "limit": limit})
        return await cur.fetchall()


async def report(conn: AsyncConnection[Any], user: User, text: str, location: str, building: str | None,
                 device: str | None, photo: bytes, run_dir: Path, *, policy: Policy,
                 now: dt.datetime) -> int | str:
    """File a resident report (报事报修); return the work order id or an error message."""
    if not text.strip():
        return "a report needs a description"
    community = user.communities[0] if user.communities else None
    async with conn.cursor() as cur:
        if building is not None:
            await cur.execute(
                "SELECT c.code FROM buildings b JOIN communities c ON c.id = b.community_id"
                " WHERE b.code = %s AND (%s OR c.code = ANY(%s)) ORDER BY c.code = %s DESC LIMIT 1",
                (building, user.is_admin, list(user.communities), community))
            row = await cur.fetchone()
            if row is None:
                return "unknown building"
            community = row[0]
        if device is not None:
            await cur.execute(
                "SELECT 1 FROM devices d JOIN communities c ON c.id = d.community_id WHERE d.code = %s AND c.code = %s",
                (device, community))
            if await cur.fetchone() is None:
                return "unknown device"
    if community is None:
        return "your account belongs to no community"
    try:
        refs = [photos.store(run_dir, community, photo)] if photo else []
        wo, _linked = await submit_report(
            conn, policy,
            Report(community=community, text=text.strip(), building=building, device=device, location=location,
                   photos=refs, reporter_name=user.name, reporter_phone=user.phone or "", reporter_user_id=user.id),
            now, Actor("user", user.id, user.name, user.role.value))
    except photos.PhotoRejected as exc:
        return str(exc)
    except WorkOrderError as exc:
        return str(exc)
    return int(wo["id"])


async def rate_order(conn: AsyncConnection[Any], user: User, wo_id: int, stars: int, comment: str, *,
                     policy: Policy, now: dt.datetime) -> str | None:
    wo = await _visible_order(conn, user, wo_id)
    if wo is None:
        return "not_found"
    try:
        await rate(conn, policy, wo_id, stars, comment.strip(), Actor("user", user.id, user.name, user.role.value),
                   now)
    except WorkOrderError as exc:
        return str(exc)
    return None
