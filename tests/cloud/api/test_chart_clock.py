"""Chart ranges end at the app clock's ``now``, whatever the date (issue 14, section 1).

``/api/v1/devices/{id}/series?range=24h`` without an ``end`` used to read the wall clock; it now
takes ``now`` from the app's injected clock. Run at a year end in the community's zone, a month
end and 12:30 UTC on a :class:`ManualClock`, with rollup rows on both sides of that ``now``: the
chart holds exactly the 24 hours before it, across the day, month and year boundaries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.auth.users import create_user
from cloud.db.pool import open_pool
from cloud.registry import store
from guanjia.core.clock import ManualClock
from guanjia.core.settings import Settings

SECRET = "test-secret-key-for-the-chart-clock-tests-0123456789"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
INSTANTS = [
    pytest.param(dt.datetime(2027, 1, 1, 0, 30, tzinfo=SHANGHAI), id="year-end-shanghai"),
    pytest.param(dt.datetime(2027, 3, 1, 0, 10, tzinfo=dt.UTC), id="month-end"),
    pytest.param(dt.datetime(2026, 12, 7, 12, 30, tzinfo=dt.UTC), id="noon-utc"),
]


@pytest.fixture
async def chart_pool(fresh_db: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with open_pool(fresh_db, min_size=1, max_size=2) as pool:
        yield pool


def _seed(fresh_db: str, now: dt.datetime) -> int:
    """A device with one metric and a 1-minute rollup row every minute from now-30h to now+2h."""
    first = now.replace(second=0, microsecond=0) - dt.timedelta(hours=30)
    with psycopg.connect(fresh_db) as conn:
        store.ensure_community(conn, "cc")
        device = store.add_device(conn, "cc", "pump-1", kind="pump")
        row = conn.execute("INSERT INTO metrics (name) VALUES ('pressure') RETURNING id").fetchone()
        assert row is not None
        with conn.cursor() as cur, cur.copy("COPY telemetry_1m (bucket, device_id, metric_id, avg_value, "
                                            "min_value, max_value, n) FROM STDIN") as copy:
            for i in range(32 * 60):
                copy.write_row((first + dt.timedelta(minutes=i), device, row[0], 3.0, 2.5, 3.5, 20))
    return device


@pytest.mark.parametrize("now", INSTANTS)
async def test_a_24h_chart_ends_at_the_clocks_now(chart_pool: AsyncConnectionPool[Any], fresh_db: str,
                                                  tmp_path: Path, now: dt.datetime) -> None:
    from cloud.app import create_app

    device = _seed(fresh_db, now)
    async with chart_pool.connection() as conn:
        await create_user(conn, "eng", "pw-eng-Secret-42", Role.engineer, ["cc"])
    app = create_app(Settings(mode="test", database_url=fresh_db, secret_key=SECRET, run_dir=tmp_path / "run"),
                     chart_pool, clock=ManualClock(now))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as client:
        token = (await client.post("/api/v1/auth/token",
                                   data={"username": "eng", "password": "pw-eng-Secret-42"})).json()["access_token"]
        resp = await client.get(f"/api/v1/devices/{device}/series", params={"metric": "pressure", "range": "24h"},
                                headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["source"] == "telemetry_1m"
    times = body["t"]
    assert len(times) == 24 * 60
    assert min(times) >= (now - dt.timedelta(days=1)).timestamp() - 60
    assert max(times) < now.timestamp()
