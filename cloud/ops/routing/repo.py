"""Routing against the database: load the community's butlers with rosters and open load, choose
one with :func:`cloud.ops.routing.scoring.choose`, and walk the escalation chain."""

from __future__ import annotations

from datetime import datetime, time
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.ops.routing.roster import Shift, on_duty
from cloud.ops.routing.scoring import Candidate, Choice, choose

_OPEN_STATES = ("new", "assigned", "accepted", "on_the_way", "on_site", "on_hold", "rejected")


async def candidates(conn: AsyncConnection[Any], community: str, now: datetime, *,
                     contractor_id: int | None = None) -> list[Candidate]:
    """The community's butlers with their rosters and open load, in one round trip: the property's
    own (``contractor_id=None``: automatic routing never picks a contractor's staff on its own), or
    the field staff of one contractor company (routing to a contract holder)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT b.id, b.name, b.kind, b.star_level, b.skills, b.buildings, b.timezone,
                      (SELECT count(*) FROM work_orders w
                        WHERE w.assignee_id = b.id AND w.state = ANY(%s)) AS open_orders,
                      (SELECT coalesce(array_agg(array[s.weekday::text, s.starts::text, s.ends::text]), '{}')
                         FROM butler_shifts s WHERE s.butler_id = b.id) AS shifts
               FROM butlers b WHERE b.active AND b.community = %s AND b.role = 'butler'
                 AND b.contractor_id IS NOT DISTINCT FROM %s""",
            (list(_OPEN_STATES), community, contractor_id),
        )
        rows = await cur.fetchall()
    return [
        Candidate(
            id=r["id"], name=r["name"], kind=r["kind"], star_level=r["star_level"], open_orders=r["open_orders"],
            on_duty=on_duty([Shift(int(d), time.fromisoformat(a), time.fromisoformat(b))
                             for d, a, b in r["shifts"]], r["timezone"], now),
            skills=frozenset(r["skills"]), buildings=frozenset(r["buildings"]),
        )
        for r in rows
    ]


async def route(
    conn: AsyncConnection[Any],
    community: str,
    skill: str,
    building: str | None,
    now: datetime,
    exclude: frozenset[int] = frozenset(),
) -> Choice | None:
    """The butler to assign, or — when no butler fits — the community's team lead or manager."""
    choice = choose(await candidates(conn, community, now), skill, building, exclude)
    if choice is not None:
        return choice
    cur = await conn.execute(
        """SELECT id FROM butlers WHERE active AND community = %s AND role IN ('team_lead', 'manager')
             AND NOT (id = ANY(%s))
           ORDER BY CASE role WHEN 'team_lead' THEN 0 ELSE 1 END, id LIMIT 1""",
        (community, list(exclude)),
    )
    row = await cur.fetchone()
    if row is None:
        return None
    return Choice(int(row[0]), 0.0, False, "no butler with the skill; routed to the team lead/manager")


async def chain(conn: AsyncConnection[Any], butler_id: int, community: str) -> list[int]:
    """The escalation chain above ``butler_id``: its manager_id links (team lead → property
    manager), then, if the links stop early, the community's team leads and managers."""
    result: list[int] = []
    seen = {butler_id}
    current: int | None = butler_id
    while current is not None:
        cur = await conn.execute("SELECT manager_id FROM butlers WHERE id = %s", (current,))
        row = await cur.fetchone()
        current = int(row[0]) if row and row[0] is not None else None
        if current is None or current in seen:
            break
        seen.add(current)
        result.append(current)
    cur = await conn.execute(
        """SELECT id FROM butlers WHERE active AND community = %s AND role IN ('team_lead', 'manager')
           ORDER BY CASE role WHEN 'team_lead' THEN 0 ELSE 1 END, id""",
        (community,),
    )
    for (extra,) in await cur.fetchall():
        if extra not in seen:
            seen.add(extra)
            result.append(int(extra))
    return result
