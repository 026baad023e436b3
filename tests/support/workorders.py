"""Seed helpers of the alarm / work-order / routing / notification tests: butlers with their
rosters, and the day and night shifts they use."""

from __future__ import annotations

from datetime import time
from typing import Any

import psycopg

from cloud.ops.routing.roster import Shift


async def add_butler(
    conn: psycopg.AsyncConnection[Any],
    name: str,
    *,
    community: str = "c1",
    skills: tuple[str, ...] = ("elevator", "water", "electrical", "access"),
    buildings: tuple[str, ...] = (),
    kind: str = "full_time",
    role: str = "butler",
    star: int = 3,
    manager_id: int | None = None,
    shifts: list[Shift] | None = None,
    email: str = "",
    messengers: tuple[str, ...] = (),
    phone: str = "",
    timezone: str = "Asia/Shanghai",
) -> int:
    cur = await conn.execute(
        """INSERT INTO butlers (name, community, skills, buildings, kind, role, star_level, manager_id, email,
                                messengers, phone, timezone)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id""",
        (name, community, list(skills), list(buildings), kind, role, star, manager_id, email, list(messengers),
         phone, timezone),
    )
    row = await cur.fetchone()
    assert row is not None
    butler_id = int(row[0])
    for s in shifts or []:
        await conn.execute("INSERT INTO butler_shifts (butler_id, weekday, starts, ends) VALUES (%s, %s, %s, %s)",
                           (butler_id, s.weekday, s.starts, s.ends))
    return butler_id


DAY = [Shift(d, time(8), time(20)) for d in range(7)]
NIGHT = [Shift(d, time(20), time(8)) for d in range(7)]
