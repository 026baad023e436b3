"""Telemetry rows for the JSON API: one device's points at a chosen resolution
(``GET /api/v1/devices/{id}/telemetry``) and its latest values (the device page's live stream).

The rows are NamedTuples: the API reshapes them into columns (``t``/``v``/``min``/``max`` for
uPlot), so a row only needs to name its fields, and a tuple per point keeps the up-to-200k-row
reads as cheap as the positional tuples they replace. The same queries run on TimescaleDB
(continuous aggregates) and plain PostgreSQL (rollup tables).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal, NamedTuple

from psycopg import AsyncConnection

Resolution = Literal["raw", "1m", "1h"]


class Point(NamedTuple):
    """One point: ``t`` in epoch ms; ``min``/``max`` are None for raw rows."""

    metric: str
    t: int
    v: float | None
    min: float | None
    max: float | None


class LastValue(NamedTuple):
    """A metric's latest value: numeric ``value`` or, for text metrics, ``value_text``."""

    metric: str
    value: float | None
    value_text: str | None
    time: dt.datetime


_RAW = """
SELECT m.name, (extract(epoch FROM t.time) * 1000)::bigint, t.value, NULL::float8, NULL::float8
FROM telemetry t JOIN metrics m ON m.id = t.metric_id
WHERE t.device_id = %(device)s AND t.time >= %(start)s AND t.time < %(end)s {metric}
ORDER BY m.name, t.time LIMIT %(limit)s
"""
_ROLLUP = """
SELECT m.name, (extract(epoch FROM r.bucket) * 1000)::bigint, r.avg_value, r.min_value, r.max_value
FROM {table} r JOIN metrics m ON m.id = r.metric_id
WHERE r.device_id = %(device)s AND r.bucket >= %(start)s AND r.bucket < %(end)s {metric}
ORDER BY m.name, r.bucket LIMIT %(limit)s
"""


async def device_code(conn: AsyncConnection[Any], device_id: int) -> str | None:
    """The device's code, or None when there is no such device."""
    cur = await conn.execute("SELECT code FROM devices WHERE id = %s", (device_id,))
    found = await cur.fetchone()
    return None if found is None else str(found[0])


async def load_points(conn: AsyncConnection[Any], device_id: int, resolution: Resolution, start: dt.datetime,
                      end: dt.datetime, metrics: list[str] | None, limit: int) -> list[Point]:
    """Points of ``metrics`` (all when None or empty) in ``[start, end)``, ordered by metric and
    time, at most ``limit`` rows (the caller asks for one more than it shows to detect truncation)."""
    params: dict[str, Any] = {"device": device_id, "start": start, "end": end, "limit": limit}
    metric_sql = ""
    if metrics:
        metric_sql = "AND m.name = ANY(%(metrics)s)"
        params["metrics"] = metrics
    if resolution == "raw":
        query = _RAW.format(metric=metric_sql)
    else:
        query = _ROLLUP.format(table="telemetry_1m" if resolution == "1m" else "telemetry_1h", metric=metric_sql)
    cur = await conn.execute(query.encode(), params)
    return [Point(*r) for r in await cur.fetchall()]


async def last_values_since(conn: AsyncConnection[Any], device_id: int, since: dt.datetime) -> list[LastValue]:
    """The device's last values newer than ``since`` (from the last-value table the rollup
    refresher maintains: one small indexed read)."""
    cur = await conn.execute(
        "SELECT m.name, l.value, l.value_text, l.time"
        "  FROM telemetry_last l JOIN metrics m ON m.id = l.metric_id"
        " WHERE l.device_id = %s AND l.time > %s", (device_id, since))
    return [LastValue(*r) for r in await cur.fetchall()]
