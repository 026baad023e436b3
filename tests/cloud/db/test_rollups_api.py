"""Rollups and last values are exact (incremental, late data included); the API serves them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import numpy as np
import psycopg
import pytest

from cloud.app import create_app
from cloud.db import partitions, rollups
from cloud.db.migrate import storage_mode
from cloud.db.pool import open_pool
from cloud.ingest.copy import encode_readings
from cloud.ingest.prepare import Incoming, Prepared
from cloud.ingest.writer import Writer
from cloud.registry import store
from cloud.runtime.context import StorageMode
from guanjia.core.settings import Settings

T0 = dt.datetime(2026, 5, 1, 10, 0, tzinfo=dt.UTC)


def _mode(url: str) -> StorageMode:
    with psycopg.connect(url) as conn:
        return storage_mode(conn)


def _ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


def _prepared(gateway_id: int, seq: int, device: int, metric: int, times: list[dt.datetime],
              values: list[float]) -> Prepared:
    ts = np.array([_ms(t) for t in times], dtype=np.int64)
    rows = encode_readings(ts, np.full(len(ts), device, np.int32), np.zeros(len(ts), np.int16),
                           np.full((len(ts), 1), metric, np.int16), np.array(values, dtype=np.float64).reshape(-1, 1))
    return Prepared(Incoming("t", b"", 0, 1, 0, 0), "telemetry", gateway_id=gateway_id, seq=seq, items=len(ts),
                    points=len(ts), chunks=[rows], tmin_ms=int(ts.min()), tmax_ms=int(ts.max()))


@pytest.fixture
def registry(storage_db: str) -> dict[str, int]:
    with psycopg.connect(storage_db) as conn:
        gid = store.add_gateway(conn, "c1", "gw1")
        did = store.add_device(conn, "c1", "pump-1", gateway="gw1", kind="water_pump")
        row = conn.execute("INSERT INTO metrics (name) VALUES ('pressure') RETURNING id").fetchone()
        assert row is not None
    return {"gateway": gid, "device": did, "metric": int(row[0])}


async def test_rollups_are_exact_and_include_late_data(storage_db: str, registry: dict[str, int]) -> None:
    g, d, m = registry["gateway"], registry["device"], registry["metric"]
    writer = Writer(mode=_mode(storage_db))
    rng = np.random.default_rng(1)
    times = [T0 + dt.timedelta(seconds=7 * i) for i in range(1200)]  # 140 minutes, 2 hours touched
    values = [float(v) for v in np.round(rng.normal(3.0, 0.5, len(times)), 4)]
    async with await psycopg.AsyncConnection.connect(storage_db) as conn:
        await writer.write(conn, [_prepared(g, 1, d, m, times[:600], values[:600])])
        assert (await rollups.refresh(conn, _mode(storage_db), now=T0 + dt.timedelta(days=1))).minute_rows > 0
        await writer.write(conn, [_prepared(g, 2, d, m, times[600:], values[600:])])
        # late data for the first hour arrives after that hour was rolled up
        late_t, late_v = T0 + dt.timedelta(minutes=5, seconds=1), 100.0
        await writer.write(conn, [_prepared(g, 3, d, m, [late_t], [late_v])])
        await rollups.refresh(conn, _mode(storage_db), now=T0 + dt.timedelta(days=1))
        cur = await conn.execute("SELECT bucket, avg_value, min_value, max_value, n FROM telemetry_1m "
                                 "WHERE device_id = %s ORDER BY bucket", (d,))
        minute = await cur.fetchall()
        cur = await conn.execute("SELECT bucket, avg_value, min_value, max_value, n FROM telemetry_1h "
                                 "WHERE device_id = %s ORDER BY bucket", (d,))
        hour = await cur.fetchall()
        cur = await conn.execute("SELECT time, value FROM telemetry_last WHERE device_id = %s", (d,))
        last = await cur.fetchone()
    all_t, all_v = [*times, late_t], [*values, late_v]
    expect: dict[dt.datetime, list[float]] = {}
    for t, v in zip(all_t, all_v, strict=True):
        expect.setdefault(t.replace(second=0), []).append(v)
    assert [r[0] for r in minute] == sorted(expect)
    for bucket, avg, lo, hi, n in minute:
        vals = expect[bucket]
        assert n == len(vals)
        assert avg == pytest.approx(sum(vals) / len(vals))
        assert (lo, hi) == (min(vals), max(vals))
    assert len(hour) == 3  # 10:00, 11:00, 12:00
    first_hour = [v for t, v in zip(all_t, all_v, strict=True) if t < T0 + dt.timedelta(hours=1)]
    assert hour[0][4] == len(first_hour)
    assert hour[0][1] == pytest.approx(sum(first_hour) / len(first_hour))
    assert hour[0][3] == 100.0
    assert last == (times[-1], values[-1])


async def test_telemetry_api_chooses_resolution(storage_db: str, registry: dict[str, int]) -> None:
    g, d, m = registry["gateway"], registry["device"], registry["metric"]
    times = [T0 + dt.timedelta(seconds=30 * i) for i in range(240)]  # 2 hours
    async with await psycopg.AsyncConnection.connect(storage_db) as conn:
        await Writer(mode=_mode(storage_db)).write(conn, [_prepared(g, 1, d, m, times, [float(i) for i in range(240)])])
        await rollups.refresh(conn, _mode(storage_db), now=T0 + dt.timedelta(days=1))
    async with open_pool(storage_db, max_size=2) as pool:
        app = create_app(Settings(mode="test"), pool, auth=False)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            async def get(**params: Any) -> httpx.Response:
                return await client.get(f"/api/v1/devices/{d}/telemetry", params=params)

            raw = (await get(metric="pressure", start=T0.isoformat(), end=(T0 + dt.timedelta(hours=1)).isoformat()))
            assert raw.status_code == 200, raw.text
            body = raw.json()
            assert body["resolution"] == "raw"
            assert len(body["series"][0]["t"]) == 120
            week = (await get(start=T0.isoformat(), end=(T0 + dt.timedelta(days=2)).isoformat())).json()
            assert week["resolution"] == "1m"
            assert len(week["series"][0]["t"]) == 120
            month = (await get(start=T0.isoformat(), end=(T0 + dt.timedelta(days=30)).isoformat())).json()
            assert month["resolution"] == "1h"
            assert month["series"][0]["v"][0] == pytest.approx(59.5)
            missing = await client.get("/api/v1/devices/999999/telemetry")
            assert missing.status_code == 404
            assert missing.json()["error"]["code"] == "not_found"
            bad = await get(start="yesterday")
            assert bad.status_code == 422
            assert bad.json()["error"]["code"] == "invalid_request"
            dead = await client.get("/api/v1/deadletter")
            assert dead.status_code == 200
            assert dead.json() == {"items": [], "counts": {}}
            health = await client.get("/healthz")
            assert health.json()["database"]["ok"] is True
            metrics = await client.get("/metrics")
            assert metrics.status_code == 200


async def test_writer_creates_missing_partitions_on_demand(storage_db: str, registry: dict[str, int]) -> None:
    g, d, m = registry["gateway"], registry["device"], registry["metric"]
    old = T0 - dt.timedelta(days=20)
    async with await psycopg.AsyncConnection.connect(storage_db) as conn:
        result = await Writer(mode=_mode(storage_db)).write(conn, [_prepared(g, 1, d, m, [old, T0], [1.0, 2.0])])
        assert result.points == 2
        days = await partitions.existing_days(conn)
    if _mode(storage_db) == "plain":  # TimescaleDB makes its own chunks
        assert {old.date(), T0.date()} <= days


async def test_open_minute_waits_but_last_value_is_immediate(storage_db: str, registry: dict[str, int]) -> None:
    g, d, m = registry["gateway"], registry["device"], registry["metric"]
    now = T0 + dt.timedelta(minutes=30, seconds=20)
    async with await psycopg.AsyncConnection.connect(storage_db) as conn:
        reading = _prepared(g, 1, d, m, [now - dt.timedelta(seconds=5)], [7.5])
        await Writer(mode=_mode(storage_db)).write(conn, [reading])
        first = await rollups.refresh(conn, _mode(storage_db), now=now)
        assert first.last_rows == 1
        assert first.minute_rows == 0  # the minute is still open
        cur = await conn.execute("SELECT value FROM telemetry_last WHERE device_id = %s", (d,))
        assert await cur.fetchone() == (7.5,)
        second = await rollups.refresh(conn, _mode(storage_db), now=now + dt.timedelta(minutes=1))
        assert second.last_rows == 0  # already seen
        assert second.minute_rows == 1
        cur = await conn.execute("SELECT count(*) FROM rollup_invalidations")
        assert await cur.fetchone() == (0,)
