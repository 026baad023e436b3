"""Butler records as the inbox (API and page) and the work-order visibility checks read them.

A butler record (``butlers``) is the routing side of a butler-role user: skills, roster, role in
the team. ``butler_of`` returns the whole row as a dict because the inbox page shows it as is.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row


async def butler_of(conn: AsyncConnection[Any], user_id: int) -> dict[str, Any] | None:
    """The user's active butler record (the oldest, if several), or None."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM butlers WHERE user_id = %s AND active ORDER BY id LIMIT 1", (user_id,))
        return await cur.fetchone()


async def butler_role(conn: AsyncConnection[Any], butler_id: int | None) -> str | None:
    """The butler's team role (``butler``, team lead, manager …), or None when there is no such butler."""
    cur = await conn.execute("SELECT role FROM butlers WHERE id = %s", (butler_id,))
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def butler_community(conn: AsyncConnection[Any], butler_id: int) -> str | None:
    """The butler's community, or None when there is no such butler."""
    cur = await conn.execute("SELECT community FROM butlers WHERE id = %s", (butler_id,))
    row = await cur.fetchone()
    return None if row is None else row[0]


async def volunteers(conn: AsyncConnection[Any], community: str) -> list[dict[str, Any]]:
    """The active volunteer butlers (志愿管家) of ``community`` (id, name, open orders): whom a
    full-time butler may hand a task to from the inbox page."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT b.id, b.name, (SELECT count(*) FROM work_orders w WHERE w.assignee_id = b.id
                                       AND w.state NOT IN ('resolved', 'closed', 'cancelled')) AS open_orders
                 FROM butlers b WHERE b.community = %s AND b.kind = 'volunteer' AND b.active ORDER BY b.name, b.id""",
            (community,))
        return await cur.fetchall()
