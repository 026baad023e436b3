"""Chart data for one device and metric over any range, read from the cheapest source.

Resolution is chosen so a chart never has more than about ``MAX_POINTS`` points, whatever the
range: raw rows for ranges up to 2 hours, the 1-minute rollup up to 3 days, the 1-hour rollup
beyond — re-bucketed with ``date_bin`` when even hourly points would be too many (a year).
``date_bin`` is plain PostgreSQL (14+), so the same query runs on TimescaleDB.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

MAX_POINTS = 2000
RAW_MAX = dt.timedelta(hours=2)
MINUTE_MAX = dt.timedelta(days=3)
MAX_RANGE = dt.timedelta(days=3660)


@dataclass(slots=True)
class Series:
    metric: str
    source: str
    step_s: int
    times: list[float]  # epoch seconds (what uPlot wants)
    avg: list[float | None]
    min: list[float | None]
    max: list[float | None]


def choose(start: dt.datetime, end: dt.datetime) -> tuple[str, dt.timedelta]:
    """(table, bucket) for a range: the finest source whose points fit in ``MAX_POINTS``."""
    span = end - start
    if span <= RAW_MAX:
        source, native = "telemetry", dt.timedelta(seconds=1)
    elif span <= MINUTE_MAX:
        source, native = "telemetry_1m", dt.timedelta(minutes=1)
    else:
        source, native = "telemetry_1h", dt.timedelta(hours=1)
    step = native
    while span / step > MAX_POINTS:
        step *= 2
    return source, step


async def metric_names(conn: AsyncConnection[Any], device_id: int) -> list[str]:
    """Numeric metrics the device has reported (from the last-value table)."""
    cur = await conn.execute(
        "SELECT m.name FROM telemetry_last l JOIN metrics m ON m.id = l.metric_id"
        " WHERE l.device_id = %s AND l.value IS NOT NULL ORDER BY m.name", (device_id,))
    return [r[0] for r in await cur.fetchall()]


async def load_series(conn: AsyncConnection[Any], device_id: int, metric: str,
                      start: dt.datetime, end: dt.datetime) -> Series | None:
    """The series, or None when the metric is unknown. The caller checks the tenant first."""
    cur = await conn.execute("SELECT id FROM metrics WHERE name = %s", (metric,))
    row = await cur.fetchone()
    if row is None:
        return None
    metric_id = row[0]
    source, step = choose(start, end)
    origin = dt.datetime(2000, 1, 3, tzinfo=dt.UTC)  # a Monday, so weekly buckets align
    if source == "telemetry":
        sql = """SELECT extract(epoch FROM date_bin(%(step)s, time, %(origin)s)) AS t,
                        avg(value), min(value), max(value)
                   FROM telemetry WHERE device_id = %(d)s AND metric_id = %(m)s
                    AND time >= %(start)s AND time < %(end)s AND value IS NOT NULL
                  GROUP BY 1 ORDER BY 1"""
    else:
        sql = f"""SELECT extract(epoch FROM date_bin(%(step)s, bucket, %(origin)s)) AS t,
                         sum(avg_value * n) / nullif(sum(n), 0), min(min_value), max(max_value)
                    FROM {source} WHERE device_id = %(d)s AND metric_id = %(m)s
                     AND bucket >= %(start)s AND bucket < %(end)s
                   GROUP BY 1 ORDER BY 1"""
    cur = await conn.execute(sql, {"step": step, "origin": origin, "d": device_id, "m": metric_id,
                                   "start": start, "end": end})
    rows = await cur.fetchall()
    return Series(metric=metric, source=source, step_s=int(step.total_seconds()),
                  times=[float(r[0]) for r in rows], avg=[r[1] for r in rows],
                  min=[r[2] for r in rows], max=[r[3] for r in rows])


PREFERRED = {"elevator": ("load_percent", "speed"), "pump": ("outlet_pressure", "flow", "power"),
             "gate": ("passages_in",), "meter": ("power", "power_total", "voltage")}


def default_metric(kind: str, available: list[str]) -> str | None:
    """The metric a device page charts first: the most telling one of its kind, if reported."""
    for name in PREFERRED.get(kind, ()):
        if name in available:
            return name
    return available[0] if available else None
