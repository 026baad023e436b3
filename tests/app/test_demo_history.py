"""The demo's 90 days of simulated history (real PostgreSQL, a pinned instant): every registered
device with physics gets dense hourly rollups ending at the current hour, with the shapes of the
simulators' models (a lift's trips only grow, its load follows the day); a device without physics
(a gateway) is skipped; a second run writes nothing (no doubled history, no overwritten data)."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import psycopg

from guanjia.app.demo_history import seed_history

NOW = dt.datetime(2027, 1, 29, 1, 20, tzinfo=dt.UTC)  # 09:20 in Shanghai
TOP = NOW.replace(minute=0)


async def _registry(conn: psycopg.AsyncConnection[Any]) -> None:
    cur = await conn.execute("INSERT INTO communities (code) VALUES ('demo-h') RETURNING id")
    cid = (await cur.fetchone() or (0,))[0]
    await conn.execute(
        "INSERT INTO devices (community_id, code, kind, profile_id) VALUES (%s, 'b1-elevator-1', 'elevator',"
        " 'elevator-gbt24476'), (%s, 'b1-meter-1', 'meter', 'eastron-sdm120'), (%s, 'gw-1', 'gateway', NULL)",
        (cid, cid, cid))
    await conn.commit()


async def _rows(conn: psycopg.AsyncConnection[Any]) -> list[tuple[Any, ...]]:
    cur = await conn.execute(
        "SELECT d.code, m.name, count(*), min(h.bucket), max(h.bucket) FROM telemetry_1h h"
        " JOIN devices d ON d.id = h.device_id JOIN metrics m ON m.id = h.metric_id"
        " GROUP BY 1, 2 ORDER BY 1, 2")
    return await cur.fetchall()


async def test_ninety_days_once_with_the_physics_shapes(fresh_db: str) -> None:
    async with await psycopg.AsyncConnection.connect(fresh_db) as conn:
        await _registry(conn)
        first = await seed_history(conn, "demo-h", NOW, days=90, workers=2)
        assert (first.devices, first.skipped) == (2, 1)
        rows = await _rows(conn)
        assert {code for code, *_ in rows} == {"b1-elevator-1", "b1-meter-1"}
        for code, metric, count, low, high in rows:
            assert count <= 90 * 24, (code, metric)
            assert low >= TOP - dt.timedelta(days=90), (code, metric)
            assert high == TOP - dt.timedelta(hours=1), (code, metric)
        by_metric = {(code, metric): count for code, metric, count, *_ in rows}
        assert by_metric[("b1-elevator-1", "run_count")] == 90 * 24
        assert by_metric[("b1-meter-1", "energy_import")] == 90 * 24
        assert by_metric[("b1-meter-1", "energy_total")] == 90 * 24  # what the manager report costs
        assert first.rows == sum(by_metric.values())

        cur = await conn.execute(
            "SELECT h.avg_value FROM telemetry_1h h JOIN metrics m ON m.id = h.metric_id"
            " JOIN devices d ON d.id = h.device_id WHERE d.code = 'b1-elevator-1' AND m.name = 'run_count'"
            " ORDER BY h.bucket")
        trips = [r[0] for r in await cur.fetchall()]
        assert all(b >= a for a, b in itertools.pairwise(trips))  # a counter
        assert trips[-1] - trips[0] > 90 * 100  # a lift in a residential building: hundreds of trips a day
        cur = await conn.execute(
            "SELECT extract(hour FROM h.bucket AT TIME ZONE 'Asia/Shanghai') AS hr, avg(h.avg_value)"
            " FROM telemetry_1h h JOIN metrics m ON m.id = h.metric_id JOIN devices d ON d.id = h.device_id"
            " WHERE d.code = 'b1-meter-1' AND m.name IN ('power', 'power_total') GROUP BY 1")
        power: dict[Any, float] = {hour: float(avg) for hour, avg in await cur.fetchall()}
        assert max(power.values()) > 1.3 * min(power.values())  # a daily load curve, not a flat line

        cur = await conn.execute("SELECT d.code, (h.record ->> 'availability')::float FROM device_health h"
                                 " JOIN devices d ON d.id = h.device_id ORDER BY 1")
        # health records read the 30 days of history at once: every hour of the window has data
        assert await cur.fetchall() == [("b1-elevator-1", 1.0), ("b1-meter-1", 1.0)]

        again = await seed_history(conn, "demo-h", NOW + dt.timedelta(hours=5), days=90, workers=1)
        assert (again.devices, again.skipped, again.rows) == (0, 3, 0)
        assert await _rows(conn) == rows
