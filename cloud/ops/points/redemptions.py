"""Redemption requests: a volunteer asks on their phone, staff decide.

Why a request and not a redemption straight from the phone: points pay for community services
(家电清洗, 代购, …) that staff arrange, so someone must say yes; the ask and its answer are kept
(``points_redemptions``), and only an approval writes the ledger — through
:func:`cloud.ops.points.ledger.redeem`, which locks the butler and never overdraws, so a balance
spent between the ask and the approval makes the approval fail, not the ledger go negative.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row

from cloud.db.rows import fetch_one
from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import IllegalTransition, InvalidRequest, NotFound, found
from cloud.ops.points import ledger


@dataclass(frozen=True, slots=True)
class Redemption:
    id: int
    butler_id: int
    butler_name: str
    community: str
    points: int
    service: str
    state: str
    created_at: datetime
    decided_at: datetime | None
    decided_by: str


_SELECT = """SELECT r.id, r.butler_id, b.name AS butler_name, r.community, r.points, r.service, r.state, r.created_at,
                    r.decided_at, r.decided_by
               FROM points_redemptions r JOIN butlers b ON b.id = r.butler_id"""


async def ask(conn: AsyncConnection[Any], butler_id: int, points: int, service: str, now: datetime) -> Redemption:
    """A volunteer's request; refused at once when it asks for more than the balance."""
    service = service.strip()
    if points <= 0 or not service:
        raise InvalidRequest("a redemption needs a positive number of points and the service it pays for")
    have = await ledger.balance(conn, butler_id)
    if have < points:
        raise InvalidRequest(f"not enough points: {have} available, {points} asked")
    cur = await conn.execute(
        """INSERT INTO points_redemptions (butler_id, community, points, service, created_at)
           SELECT id, community, %s, %s, %s FROM butlers WHERE id = %s RETURNING id""",
        (points, service[:500], now, butler_id))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"butler {butler_id} not found")
    return await get(conn, int(row[0]))


async def get(conn: AsyncConnection[Any], redemption_id: int) -> Redemption:
    return found(await fetch_one(conn, Redemption, _SELECT + " WHERE r.id = %s", (redemption_id,)),
                 f"redemption request {redemption_id} not found")


async def decide(conn: AsyncConnection[Any], redemption_id: int, approve: bool, actor: Actor,
                 now: datetime) -> Redemption:
    """Staff approve (the ledger's ``redeem`` entry is written in the same transaction) or refuse."""
    async with conn.transaction():
        cur = await conn.execute("SELECT butler_id, points, service, state FROM points_redemptions WHERE id = %s "
                                 "FOR UPDATE", (redemption_id,))
        row = await cur.fetchone()
        if row is None:
            raise NotFound(f"redemption request {redemption_id} not found")
        butler_id, points, service, state = row
        if state != "pending":
            raise IllegalTransition(state, "approve" if approve else "refuse", [])
        entry_id = None
        if approve:
            entry_id = (await ledger.redeem(conn, butler_id, points, service, actor, now))["id"]
        await conn.execute(
            "UPDATE points_redemptions SET state = %s, decided_at = %s, decided_by = %s, ledger_id = %s WHERE id = %s",
            ("approved" if approve else "refused", now, actor.name or actor.label, entry_id, redemption_id))
    return await get(conn, redemption_id)


async def of_butler(conn: AsyncConnection[Any], butler_id: int, limit: int = 50) -> list[Redemption]:
    async with conn.cursor(row_factory=class_row(Redemption)) as cur:
        await cur.execute(_SELECT + " WHERE r.butler_id = %s ORDER BY r.id DESC LIMIT %s", (butler_id, limit))
        return await cur.fetchall()


async def pending(conn: AsyncConnection[Any], community: str, limit: int = 200) -> list[Redemption]:
    async with conn.cursor(row_factory=class_row(Redemption)) as cur:
        await cur.execute(_SELECT + " WHERE r.community = %s AND r.state = 'pending' ORDER BY r.id LIMIT %s",
                          (community, limit))
        return await cur.fetchall()
