"""The writes of the demo's simulated history (:mod:`guanjia.app.demo_replay`, the bearing-wear
replay, and :mod:`guanjia.app.demo_history`, 90 days for every device of the demo community):
register the demo pump, list the devices still without history, and write simulated hourly
aggregates into ``telemetry_1h`` with COPY.

Why here: the replay lives in the app tier (it needs the simulators' physics), but the app must
carry no SQL (issue 16), and what it writes is an :class:`~cloud.analytics.frames.HourlyFrame`,
analytics' own shape of ``telemetry_1h``, so analytics owns the statement that stores one. Both
functions commit: the replay's later steps (train, score) read what they wrote on the same
connection and the demo wants the data kept even if scoring fails.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import numpy as np
from psycopg import AsyncConnection
from psycopg.rows import class_row

from cloud.analytics.frames import HOUR_MS, HourlyFrame


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


async def ensure_device(conn: AsyncConnection[Any], community: str, building: str, device: str,
                        profile: str = "vfd-pump") -> int:
    """The device's id, registering community / building / device (kind pump) when missing."""
    cur = await conn.execute("INSERT INTO communities (code) VALUES (%s) ON CONFLICT (code) DO UPDATE "
                             "SET code = EXCLUDED.code RETURNING id", (community,))
    row = await cur.fetchone()
    assert row is not None
    cid = int(row[0])
    cur = await conn.execute("INSERT INTO buildings (community_id, code) VALUES (%s, %s) ON CONFLICT "
                             "(community_id, code) DO UPDATE SET code = EXCLUDED.code RETURNING id", (cid, building))
    row = await cur.fetchone()
    assert row is not None
    cur = await conn.execute(
        "INSERT INTO devices (community_id, building_id, code, kind, profile_id) VALUES (%s, %s, %s, 'pump', %s) "
        "ON CONFLICT (community_id, code) DO UPDATE SET kind = 'pump' RETURNING id", (cid, row[0], device, profile))
    row = await cur.fetchone()
    assert row is not None
    await conn.commit()
    return int(row[0])


async def write_rollup(conn: AsyncConnection[Any], device_id: int, frame: HourlyFrame) -> int:
    """Write the frame's hours as ``telemetry_1h`` rows (replacing that device's rows in the range).

    ``telemetry_1h`` is a table refreshed by the service in both storage modes (migration 007), so
    a replay of hourly aggregates can be written straight into it on plain PostgreSQL and on
    TimescaleDB alike.
    """
    start, end = _at(frame.start_ms), _at(frame.start_ms + frame.hours * HOUR_MS)
    await conn.execute("DELETE FROM telemetry_1h WHERE device_id = %s AND bucket >= %s AND bucket < %s",
                       (device_id, start, end))
    rows = 0
    for metric in frame.avg:
        cur = await conn.execute("INSERT INTO metrics (name) VALUES (%s) ON CONFLICT (name) DO UPDATE "
                                 "SET name = EXCLUDED.name RETURNING id", (metric,))
        row = await cur.fetchone()
        assert row is not None
        avg, low, high = frame.avg[metric], frame.min[metric], frame.max[metric]
        sql = "COPY telemetry_1h (bucket, device_id, metric_id, avg_value, min_value, max_value, n) FROM STDIN"
        async with conn.cursor() as c, c.copy(sql) as copy:
            for i in np.flatnonzero(~np.isnan(avg)).tolist():
                await copy.write_row((_at(frame.start_ms + i * HOUR_MS), device_id, row[0], float(avg[i]),
                                      float(low[i]), float(high[i]), 3))
                rows += 1
    await conn.commit()
    return rows


@dataclass(frozen=True, slots=True)
class HistoryDevice:
    """A registered device of a community and whether it already has history (hourly rollups
    older than the asked instant): the demo's history seeding skips those, so a second run, or a
    run after days of live data, never doubles or overwrites what is there."""

    id: int
    code: str
    kind: str
    profile_id: str | None
    has_history: bool


async def history_devices(conn: AsyncConnection[Any], community: str, older_than: dt.datetime) -> list[HistoryDevice]:
    async with conn.cursor(row_factory=class_row(HistoryDevice)) as cur:
        await cur.execute(
            """SELECT d.id, d.code, d.kind, d.profile_id,
                      EXISTS (SELECT 1 FROM telemetry_1h h WHERE h.device_id = d.id AND h.bucket < %s) AS has_history
                 FROM devices d JOIN communities c ON c.id = d.community_id
                WHERE c.code = %s ORDER BY d.code""", (older_than, community))
        return await cur.fetchall()
