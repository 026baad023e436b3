"""Work orders as butlers and residents see them, and their one-tap actions.

Reads are the tenant-scoped read models of :mod:`cloud.queries.workorders` (the same checks the
JSON API makes); every change goes through the WORKORDERS part's domain functions
(:func:`cloud.ops.workorders.repo.transition`, :func:`cloud.ops.workorders.reports.submit_report`,
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

from cloud.auth.roles import Role
from cloud.auth.users import User
from cloud.ops.model.actors import Actor
from cloud.ops.model.alarms import GATEWAY_OFFLINE_RULE
from cloud.ops.model.errors import WorkOrderError
from cloud.ops.model.policy import Policy
from cloud.ops.workorders import repo
from cloud.ops.workorders.reports import Report, rate, reopen, submit_report
from cloud.ops.workorders.trail import TrailEntry, work_order_trail
from cloud.queries import butlers, sites
from cloud.queries.workorders import affected_devices, open_orders, reported_by, work_order
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


async def butler_of(conn: AsyncConnection[Any], user: User) -> dict[str, Any] | None:
    return await butlers.butler_of(conn, user.id)


async def inbox_orders(conn: AsyncConnection[Any], user: User, butler: dict[str, Any] | None,
                       limit: int = 200) -> list[dict[str, Any]]:
    """A butler's open orders, most urgent deadline first; staff without a butler record see every
    open order of their communities (the dispatcher's view)."""
    if butler is None and user.role is Role.butler:
        return []
    rows = await open_orders(conn, user, butler["id"] if butler else None, gateway_rule=GATEWAY_OFFLINE_RULE,
                             limit=limit)
    affected = await affected_devices(conn, [r["alarm_id"] for r in rows if r["gateway_order"]])
    for row in rows:
        row["buttons"] = BUTTONS.get(row["state"], ())
        row["affected"] = affected.get(row["alarm_id"], []) if row["gateway_order"] else None
    return rows


async def _visible_order(conn: AsyncConnection[Any], user: User, wo_id: int) -> dict[str, Any] | None:
    if not -2**63 <= wo_id < 2**63:
        return None
    wo = await work_order(conn, wo_id)
    if wo is None or not user.can_see(wo["community"]):
        return None
    # a resident sees the orders they reported, including those their report was linked to
    if (user.role is Role.resident and wo["reporter_user_id"] != user.id
            and not await reported_by(conn, wo_id, user.id)):
        return None
    return wo


async def order_trail(conn: AsyncConnection[Any], user: User, wo_id: int, lang: str) -> list[TrailEntry] | None:
    """The API's trail read model (names, words in ``lang``); the reporter's data is shown to staff
    and to the butler assigned, masked for everyone else (as the API's detail does)."""
    wo = await _visible_order(conn, user, wo_id)
    if wo is None:
        return None
    butler = await butler_of(conn, user) if user.role is Role.butler else None
    reveal = user.role in (Role.admin, Role.engineer) or (butler is not None and wo["assignee_id"] == butler["id"])
    return await work_order_trail(conn, wo_id, lang, reveal_pii=reveal)


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
                await repo.add_photo(conn, wo_id, ref)
    except photos.PhotoRejected as exc:
        return str(exc)
    except WorkOrderError as exc:
        log.info("work order %s: %s by %s refused: %s", wo_id, action, actor.label, exc)
        return str(exc)
    return None


async def report(conn: AsyncConnection[Any], user: User, text: str, location: str, building: str | None,
                 device: str | None, photo: bytes, run_dir: Path, *, policy: Policy,
                 now: dt.datetime) -> int | str:
    """File a resident report (报事报修); return the work order id or an error message."""
    if not text.strip():
        return "a report needs a description"
    community = user.communities[0] if user.communities else None
    if building is not None:
        community = await sites.building_community(conn, user, building, community)
        if community is None:
            return "unknown building"
    if device is not None and not await sites.device_exists(conn, community, device):
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


async def reopen_order(conn: AsyncConnection[Any], user: User, wo_id: int, reason: str, *,
                       policy: Policy, now: dt.datetime) -> int | str:
    """A resident reopens their resolved order; the id of the order that carries on, or a message."""
    if await _visible_order(conn, user, wo_id) is None:
        return "not_found"
    try:
        wo = await reopen(conn, policy, wo_id, reason, Actor("user", user.id, user.name, user.role.value), now)
    except WorkOrderError as exc:
        return str(exc)
    return int(wo["id"])
