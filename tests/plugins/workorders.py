"""Fixtures of the alarm / work-order / routing / notification tests (a ``pytest_plugins``
module): an async connection to the test's migrated database, a controllable clock, the default
policy and a seeded site (``full``). Seed helpers: ``tests/support/workorders.py``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

from cloud.ops.model.policy import Policy, default_policy
from guanjia.core.clock import ManualClock
from tests.support.workorders import add_butler


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


@pytest.fixture
async def full(wo_db: str) -> Any:
    """Every migration (ingest's schema too; ``wo_db``, the database ``conn`` uses), community cp,
    building b7, gateway gw1 (seen at the clock's start), device lift-1 and one butler: yields
    (connection, gateway id, device id)."""
    async with await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as conn:
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
