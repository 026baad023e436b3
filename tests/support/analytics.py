"""Seed helpers of the analytics tests: a device with its community and building, and a frame
loaded into telemetry_1h."""

from __future__ import annotations

import datetime as dt
from typing import Any

import numpy as np
import psycopg

from cloud.analytics.frames import HOUR_MS, HourlyFrame


async def add_device(conn: psycopg.AsyncConnection[Any], community: str, building: str, code: str, kind: str,
                     profile: str) -> int:
    cur = await conn.execute("INSERT INTO communities (code) VALUES (%s) ON CONFLICT (code) DO UPDATE "
                             "SET code = EXCLUDED.code RETURNING id", (community,))
    row = await cur.fetchone()
    assert row is not None
    cid = row[0]
    cur = await conn.execute("INSERT INTO buildings (community_id, code) VALUES (%s, %s) ON CONFLICT "
                             "(community_id, code) DO UPDATE SET code = EXCLUDED.code RETURNING id", (cid, building))
    row = await cur.fetchone()
    assert row is not None
    cur = await conn.execute("INSERT INTO devices (community_id, building_id, code, kind, profile_id) "
                             "VALUES (%s, %s, %s, %s, %s) RETURNING id", (cid, row[0], code, kind, profile))
    row = await cur.fetchone()
    assert row is not None
    await conn.commit()
    return int(row[0])


async def load_rollup(conn: psycopg.AsyncConnection[Any], device_id: int, frame: HourlyFrame) -> None:
    """Write the frame as telemetry_1h rows (what the rollup refresher would have produced)."""
    for metric in frame.avg:
        cur = await conn.execute("INSERT INTO metrics (name) VALUES (%s) ON CONFLICT (name) DO UPDATE "
                                 "SET name = EXCLUDED.name RETURNING id", (metric,))
        row = await cur.fetchone()
        assert row is not None
        mid = row[0]
        avg, low, high = frame.avg[metric], frame.min[metric], frame.max[metric]
        sql = "COPY telemetry_1h (bucket, device_id, metric_id, avg_value, min_value, max_value, n) FROM STDIN"
        async with conn.cursor() as c, c.copy(sql) as cp:
            for i in np.flatnonzero(~np.isnan(avg)).tolist():
                bucket = dt.datetime.fromtimestamp((frame.start_ms + i * HOUR_MS) / 1000, dt.UTC)
                await cp.write_row((bucket, device_id, mid, float(avg[i]), float(low[i]), float(high[i]), 3))
    await conn.commit()
