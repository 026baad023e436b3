"""Complaints as the API, the resident and the manager page read them; one row model for all.

``cycle`` is the manager page's figure: the mean time from filing to closing of the complaints
closed in the window, next to the sector benchmark the customer's seeds cite (1.8 days; their
own was 5.2), and how many open ones have missed a commitment.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

from psycopg import AsyncConnection
from psycopg.rows import class_row
from pydantic import BaseModel

BENCHMARK_DAYS: Final = 1.8
_COLUMNS: Final = """id, community, grade, text, reporter_user_id, butler_id, work_order_ids, state, handle_due,
                     close_due, escalation_level, created_at, updated_at, handled_at, closed_at"""


class ComplaintRow(BaseModel):
    id: int
    community: str
    grade: str
    text: str
    reporter_user_id: int | None
    butler_id: int | None
    work_order_ids: list[int]
    state: str
    handle_due: datetime
    close_due: datetime
    escalation_level: int
    created_at: datetime
    updated_at: datetime
    handled_at: datetime | None
    closed_at: datetime | None


class ComplaintCycle(BaseModel):
    closed: int
    mean_days: float | None
    open: int
    overdue: int
    benchmark_days: float = BENCHMARK_DAYS


async def community_complaints(conn: AsyncConnection[Any], community: str, state: str | None,
                               limit: int) -> list[ComplaintRow]:
    async with conn.cursor(row_factory=class_row(ComplaintRow)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM complaints WHERE community = %s AND (%s::text IS NULL OR state = %s)"
                          " ORDER BY created_at DESC LIMIT %s", (community, state, state, limit))
        return await cur.fetchall()


async def complaint_communities(conn: AsyncConnection[Any]) -> list[str]:
    """Every community that has complaints (an admin's page covers them all)."""
    cur = await conn.execute("SELECT DISTINCT community FROM complaints ORDER BY community")
    return [str(r[0]) for r in await cur.fetchall()]


async def resident_complaints(conn: AsyncConnection[Any], user_id: int, limit: int = 100) -> list[ComplaintRow]:
    async with conn.cursor(row_factory=class_row(ComplaintRow)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM complaints WHERE reporter_user_id = %s ORDER BY created_at DESC "
                          "LIMIT %s", (user_id, limit))
        return await cur.fetchall()


async def cycle(conn: AsyncConnection[Any], communities: list[str] | None, since: datetime,
                now: datetime) -> ComplaintCycle:
    """Closed since ``since``: count and mean filing → closing in days; open: count and overdue
    (a commitment passed); ``communities`` None: all."""
    async with conn.cursor(row_factory=class_row(ComplaintCycle)) as cur:
        await cur.execute(
            """SELECT count(*) FILTER (WHERE closed_at >= %(since)s) AS closed,
                      round((avg(extract(epoch FROM closed_at - created_at)) FILTER (WHERE closed_at >= %(since)s)
                             / 86400)::numeric, 2)::float AS mean_days,
                      count(*) FILTER (WHERE state <> 'closed') AS open,
                      count(*) FILTER (WHERE state <> 'closed' AND (close_due < %(now)s OR
                                       (handled_at IS NULL AND handle_due < %(now)s))) AS overdue
                 FROM complaints WHERE %(all)s OR community = ANY(%(communities)s)""",
            {"since": since, "now": now, "all": communities is None, "communities": communities or []})
        row = await cur.fetchone()
    assert row is not None
    return row
