"""Fixtures for alarms / work orders / routing / notifications: a migrated real database (only
this part's migrations, so the tests do not depend on the other parts' schemas being finished),
an async connection, a controllable clock and seed helpers."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cloud.db.migrate import migrate
from cloud.ops.model.policy import Policy, default_policy
from cloud.ops.routing.roster import Shift
from guanjia.core.clock import ManualClock

MIGRATIONS = Path(__file__).resolve().parents[3] / "cloud" / "db" / "migrations"


@pytest.fixture
def wo_db(db_url: str, tmp_path: Path) -> str:
    directory = tmp_path / "migrations"
    directory.mkdir()
    for path in MIGRATIONS.glob("1[0-9][0-9]_*.sql"):
        shutil.copy(path, directory / path.name)
    migrate(db_url, prefer_timescale=False, directory=directory)
    return db_url


@pytest.fixture
async def conn(wo_db: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    async with await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as c:
        yield c


@pytest.fixture
def clock() -> ManualClock:
    # Monday 2026-01-05 10:00 Asia/Shanghai
    return ManualClock(datetime(2026, 1, 5, 2, 0, tzinfo=UTC))


@pytest.fixture
def policy() -> Policy:
    return default_policy()


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


@pytest.fixture
async def full(db_url: str) -> Any:
    """Every migration (ingest's schema too), community cp, building b7, gateway gw1 (seen at the
    clock's start), device lift-1 and one butler: yields (connection, gateway id, device id)."""
    migrate(db_url, prefer_timescale=False)
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute("INSERT INTO communities (code) VALUES ('cp') RETURNING id")
        community = (await cur.fetchone() or (0,))[0]
        cur = await conn.execute("INSERT INTO buildings (community_id, code) VALUES (%s, 'b7') RETURNING id",
                                 (community,))
        building = (await cur.fetchone() or (0,))[0]
        cur = await conn.execute("INSERT INTO gateways (community_id, code, online, last_seen) "
                                 "VALUES (%s, 'gw1', true, %s) RETURNING id",
                                 (community, datetime(2026, 1, 5, 2, 0, tzinfo=UTC)))
        gateway = (await cur.fetchone() or (0,))[0]
        cur = await conn.execute("INSERT INTO devices (community_id, gateway_id, building_id, code, kind) "
                                 "VALUES (%s, %s, %s, 'lift-1', 'elevator') RETURNING id",
                                 (community, gateway, building))
        device = (await cur.fetchone() or (0,))[0]
        await add_butler(conn, "王师傅", community="cp")
        yield conn, gateway, device
