"""Incremental refresh of the 1-minute / 1-hour rollups and of the last-value table.

Every ingest commit appends the time range it wrote to ``rollup_invalidations``. A refresh takes
those rows (in one transaction, so a crash re-does the work instead of losing it), merges
overlapping ranges, and recomputes exactly the affected buckets: 1-minute
buckets from raw rows, 1-hour buckets from the 1-minute rollup, and the newest value per
(device, metric) into ``telemetry_last``. Late data (an edge draining its outbox after an outage)
therefore lands in the right buckets no matter how old it is, which a plain "now minus a
watermark" window would miss.

The same code runs on TimescaleDB: continuous aggregates cannot unnest the per-reading arrays of
``telemetry_readings`` (migration 007), so the rollups are service-refreshed tables in both modes.
Only one refresher runs at a time across all processes
(transaction advisory lock); the others skip that round.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

import psycopg

from cloud.runtime.context import StorageMode

log = logging.getLogger(__name__)

_LOCK_KEY = 0x67756A5F726F6C  # one refresher at a time
MINUTE = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def floor_to(moment: dt.datetime, step: dt.timedelta) -> dt.datetime:
    return EPOCH + ((moment - EPOCH) // step) * step


Range = tuple[dt.datetime, dt.datetime]


def merge_ranges(ranges: list[Range], step: dt.timedelta) -> list[Range]:
    """Align ``[low, high]`` (inclusive) ranges to ``step`` buckets as ``[start, end)`` and merge overlaps."""
    aligned = sorted((floor_to(low, step), floor_to(high, step) + step) for low, high in ranges)
    merged: list[Range] = []
    for start, end in aligned:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


@dataclass(slots=True)
class RefreshResult:
    ranges: int = 0
    minute_rows: int = 0
    hour_rows: int = 0
    last_rows: int = 0
    skipped: bool = False


_REFRESH_1M = """
INSERT INTO telemetry_1m (bucket, device_id, metric_id, avg_value, min_value, max_value, n)
SELECT date_bin('1 minute', time, %(epoch)s), device_id, metric_id, avg(value), min(value), max(value), count(value)
FROM telemetry WHERE time >= %(start)s AND time < %(end)s
GROUP BY 1, 2, 3
"""
_REFRESH_1H = """
INSERT INTO telemetry_1h (bucket, device_id, metric_id, avg_value, min_value, max_value, n)
SELECT date_bin('1 hour', bucket, %(epoch)s), device_id, metric_id,
       sum(avg_value * n) / nullif(sum(n), 0), min(min_value), max(max_value), sum(n)::bigint
FROM telemetry_1m WHERE bucket >= %(start)s AND bucket < %(end)s
GROUP BY 1, 2, 3
"""
_LAST = """
INSERT INTO telemetry_last AS t (device_id, metric_id, time, value, value_text, quality)
SELECT * FROM (
    SELECT DISTINCT ON (device_id, metric_id) device_id, metric_id, time, value, NULL::text, quality
    FROM telemetry WHERE time >= %(start)s AND time <= %(end)s
    ORDER BY device_id, metric_id, time DESC
) raw
UNION ALL
SELECT * FROM (
    SELECT DISTINCT ON (device_id, metric_id) device_id, metric_id, time, NULL::float8, value, quality
    FROM telemetry_text WHERE time >= %(start)s AND time <= %(end)s
    ORDER BY device_id, metric_id, time DESC
) txt
ON CONFLICT (device_id, metric_id) DO UPDATE
SET time = excluded.time, value = excluded.value, value_text = excluded.value_text, quality = excluded.quality
WHERE excluded.time >= t.time
"""


SETTLE = dt.timedelta(seconds=5)
"""A minute is rolled up once it closed this long ago (late rows after that re-invalidate it)."""


async def refresh(conn: psycopg.AsyncConnection, mode: StorageMode, now: dt.datetime) -> RefreshResult:
    """One refresh round in one transaction (the caller's connection must not be in one).

    Last values: every invalidation newer than the ``last_values`` watermark, every round.
    Rollups: invalidations whose range ended before the current (open) minute, consumed — so
    under a steady stream each minute bucket is computed about once, not on every round.
    """
    result = RefreshResult()
    cutoff = floor_to(now - SETTLE, MINUTE)  # the service clock's ``now``
    async with conn.transaction():
        cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK_KEY,))
        row = await cur.fetchone()
        if row is None or not row[0]:
            result.skipped = True
            return result
        cur = await conn.execute(
            "SELECT i.id, i.low, i.high FROM rollup_invalidations i, rollup_watermarks w "
            "WHERE w.name = 'last_values' AND i.id > w.last_id ORDER BY i.id")
        fresh = await cur.fetchall()
        if fresh:
            for low, high in merge_ranges([(low, high) for _, low, high in fresh], dt.timedelta(microseconds=1)):
                cur = await conn.execute(_LAST, {"start": low, "end": high})
                result.last_rows += max(cur.rowcount, 0)
            await conn.execute("UPDATE rollup_watermarks SET last_id = %s WHERE name = 'last_values'",
                               (int(fresh[-1][0]),))
        cur = await conn.execute(
            "DELETE FROM rollup_invalidations WHERE high < %s AND id <= (SELECT last_id FROM rollup_watermarks "
            "WHERE name = 'last_values') RETURNING low, high", (cutoff,))
        raw = [(low, high) for low, high in await cur.fetchall()]
        if not raw:
            return result
        minutes = merge_ranges(raw, MINUTE)
        result.ranges = len(minutes)
        for start, end in minutes:
            params = {"start": start, "end": end, "epoch": EPOCH}
            await conn.execute("DELETE FROM telemetry_1m WHERE bucket >= %(start)s AND bucket < %(end)s", params)
            cur = await conn.execute(_REFRESH_1M, params)
            result.minute_rows += max(cur.rowcount, 0)
        for start, end in merge_ranges([(s, e - MINUTE) for s, e in minutes], HOUR):
            params = {"start": start, "end": end, "epoch": EPOCH}
            await conn.execute("DELETE FROM telemetry_1h WHERE bucket >= %(start)s AND bucket < %(end)s", params)
            cur = await conn.execute(_REFRESH_1H, params)
            result.hour_rows += max(cur.rowcount, 0)
    log.debug("rollup refresh: %s", result)
    return result
