"""The points ledger: every entry auditable, none ever edited in place.

* **Earned**: a volunteer butler who resolves a work order earns ``policy.points.per_skill[skill]``
  (``policy.points.default`` otherwise), once per order (``UNIQUE (work_order_id, kind)``), in the
  transaction of the resolution (:func:`award_task`).
* **Adjusted**: staff add or take points with a reason (:func:`adjust`).
* **Redeemed**: for a community service, never below a zero balance (:func:`redeem`).

Append-only is enforced by a trigger (migration 503), so a bug or a hand-written ``UPDATE``
cannot rewrite history; corrections are new ``adjust`` entries. Concurrent redemptions of one
butler are serialised by locking the butler's row, so two cannot both spend the same balance.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import InvalidRequest, NotFound
from cloud.ops.model.policy import Policy


async def _insert(conn: AsyncConnection[Any], butler_id: int, community: str, kind: str, delta: int, reason: str,
                  actor: Actor, now: datetime, work_order_id: int | None = None) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """INSERT INTO points_ledger (butler_id, community, kind, delta, reason, work_order_id, actor, actor_name,
                                          created_at)
               VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (work_order_id, kind) DO NOTHING RETURNING *""",
            (butler_id, community, kind, delta, reason, work_order_id, actor.label, actor.name, now))
        return await cur.fetchone()


async def balance(conn: AsyncConnection[Any], butler_id: int) -> int:
    cur = await conn.execute("SELECT coalesce(sum(delta), 0) FROM points_ledger WHERE butler_id = %s", (butler_id,))
    row = await cur.fetchone()
    return int(row[0]) if row else 0


async def award_task(conn: AsyncConnection[Any], policy: Policy, wo: dict[str, Any], actor: Actor,
                     now: datetime) -> int:
    """Points for a resolved order if its assignee is a volunteer (in the caller's transaction);
    return the points given (0: not a volunteer, or already awarded)."""
    if wo.get("assignee_id") is None:
        return 0
    cur = await conn.execute("SELECT kind, name FROM butlers WHERE id = %s", (wo["assignee_id"],))
    row = await cur.fetchone()
    if row is None or row[0] != "volunteer":
        return 0
    if not actor.name:  # the ledger names people: an actor known only by id gets the butler's name
        actor = Actor(actor.kind, actor.id, str(row[1]) if actor.butler_id == wo["assignee_id"] else actor.label,
                      actor.role, actor.butler_id)
    points = policy.points.per_skill.get(wo["skill"], policy.points.default)
    if points <= 0:
        return 0
    entry = await _insert(conn, wo["assignee_id"], wo["community"], "task", points,
                          f"work order #{wo['id']} resolved ({wo['skill']})", actor, now, wo["id"])
    return points if entry is not None else 0


async def _butler_community(conn: AsyncConnection[Any], butler_id: int) -> str:
    cur = await conn.execute("SELECT community FROM butlers WHERE id = %s FOR UPDATE", (butler_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"butler {butler_id} not found")
    return str(row[0])


async def adjust(conn: AsyncConnection[Any], butler_id: int, delta: int, reason: str, actor: Actor,
                 now: datetime) -> dict[str, Any]:
    """Staff add (or take, negative) points with a reason; the balance may not go below zero."""
    if delta == 0 or not reason.strip():
        raise InvalidRequest("an adjustment needs a non-zero number of points and a reason")
    async with conn.transaction():
        community = await _butler_community(conn, butler_id)
        if delta < 0 and await balance(conn, butler_id) + delta < 0:
            raise InvalidRequest(f"butler {butler_id} has only {await balance(conn, butler_id)} points")
        entry = await _insert(conn, butler_id, community, "adjust", delta, reason.strip()[:500], actor, now)
    assert entry is not None
    return entry


async def redeem(conn: AsyncConnection[Any], butler_id: int, points: int, service: str, actor: Actor,
                 now: datetime) -> dict[str, Any]:
    """Spend ``points`` on a community service (``service`` says which)."""
    if points <= 0 or not service.strip():
        raise InvalidRequest("a redemption needs a positive number of points and the service it pays for")
    async with conn.transaction():
        community = await _butler_community(conn, butler_id)  # locks the butler: one redemption at a time
        have = await balance(conn, butler_id)
        if have < points:
            raise InvalidRequest(f"not enough points: {have} available, {points} asked")
        entry = await _insert(conn, butler_id, community, "redeem", -points, service.strip()[:500], actor, now)
    assert entry is not None
    return entry


async def entries(conn: AsyncConnection[Any], butler_id: int, limit: int = 200) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT id, kind, delta, reason, work_order_id, actor_name, created_at FROM points_ledger "
                          "WHERE butler_id = %s ORDER BY id DESC LIMIT %s", (butler_id, limit))
        return await cur.fetchall()
