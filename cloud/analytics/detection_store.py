"""The scoring job's reads and writes: devices to score, their hourly rollups, detection episodes,
the per-device scoring state and the equipment health record.

Why a module of its own: :mod:`cloud.analytics.jobs` decides *what* happens (train, advance,
raise, clear); the statements that store it live here with typed rows, as the house keeps SQL in
repository modules (models and baselines are in :mod:`cloud.analytics.modelstore`, calendars in
:mod:`cloud.analytics.calendar_store`). Times cross this boundary as aware ``datetime`` values or
epoch milliseconds (the frames' unit); the conversion is done in SQL, once, where it is cheapest.
Nothing here commits: the job owns the transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, NamedTuple

from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from cloud.analytics.detection import Detection
from cloud.analytics.health import HealthRecord
from cloud.analytics.modelstore import to_json_safe


@dataclass(slots=True)
class DeviceRef:
    """A device the analytics scores, with what its alarms and calendars are keyed by."""

    id: int
    code: str
    community: str
    kind: str
    building: str | None


class RollupRow(NamedTuple):
    """One metric's hour of ``telemetry_1h`` (``bucket_ms`` = the hour's start, epoch ms); a tuple,
    as :func:`cloud.analytics.frames.from_rollup_rows` reads it."""

    bucket_ms: int
    metric: str
    avg: float | None
    min: float | None
    max: float | None


@dataclass(frozen=True, slots=True)
class OpenSummary:
    """An open detection as the health record lists it."""

    detector: str
    fault: str
    message: str


def at(ms: int) -> dt.datetime:
    """Epoch milliseconds as an aware UTC datetime (the columns are ``timestamptz``)."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


async def devices_of(conn: AsyncConnection[Any], kind: str | None = None,
                     community: str | None = None) -> list[DeviceRef]:
    """Every device of ``kind`` (all kinds when None) in ``community`` (all when None), by id."""
    cur = await conn.execute(
        """SELECT d.id, d.code, c.code, d.kind, b.code FROM devices d
             JOIN communities c ON c.id = d.community_id
             LEFT JOIN buildings b ON b.id = d.building_id
            WHERE (%(k)s::text IS NULL OR d.kind = %(k)s) AND (%(c)s::text IS NULL OR c.code = %(c)s)
            ORDER BY d.id""", {"k": kind, "c": community})
    return [DeviceRef(int(r[0]), r[1], r[2], r[3], r[4]) for r in await cur.fetchall()]


async def rollup_rows(conn: AsyncConnection[Any], device_id: int, start: dt.datetime,
                      end: dt.datetime) -> list[RollupRow]:
    """The device's hourly aggregates over ``[start, end)``, every metric."""
    cur = await conn.execute(
        """SELECT (extract(epoch FROM h.bucket) * 1000)::bigint, m.name, h.avg_value, h.min_value, h.max_value
             FROM telemetry_1h h JOIN metrics m ON m.id = h.metric_id
            WHERE h.device_id = %s AND h.bucket >= %s AND h.bucket < %s""", (device_id, start, end))
    return [RollupRow(int(r[0]), str(r[1]), r[2], r[3], r[4]) for r in await cur.fetchall()]


async def suspect_ranges(conn: AsyncConnection[Any], device: DeviceRef, start: dt.datetime,
                         end: dt.datetime) -> list[tuple[int, int]]:
    """``[from, to)`` ms of the device's detection episodes and work orders overlapping the window
    (an open one runs to ``end``; rejected and cancelled orders were never a fault)."""
    cur = await conn.execute(
        """SELECT (extract(epoch FROM onset_at) * 1000)::bigint,
                  (extract(epoch FROM coalesce(cleared_at, %(end)s)) * 1000)::bigint
             FROM analytics_detections
            WHERE device_id = %(id)s AND onset_at < %(end)s AND (cleared_at IS NULL OR cleared_at > %(start)s)
           UNION ALL
           SELECT (extract(epoch FROM created_at) * 1000)::bigint,
                  (extract(epoch FROM coalesce(resolved_at, closed_at, %(end)s)) * 1000)::bigint
             FROM work_orders
            WHERE community = %(c)s AND device = %(d)s AND created_at < %(end)s
              AND coalesce(resolved_at, closed_at, %(end)s) > %(start)s AND state NOT IN ('rejected', 'cancelled')""",
        {"id": device.id, "c": device.community, "d": device.code, "start": start, "end": end})
    return [(int(r[0]), int(r[1])) for r in await cur.fetchall()]


async def repaired_at(conn: AsyncConnection[Any], device: DeviceRef, after: dt.datetime) -> dt.datetime | None:
    """When the device's last work order resolved after ``after`` was resolved, if any."""
    cur = await conn.execute(
        """SELECT max(coalesce(resolved_at, closed_at)) FROM work_orders
            WHERE community = %s AND device = %s AND state IN ('resolved', 'closed')
              AND coalesce(resolved_at, closed_at) > %s""", (device.community, device.code, after))
    row = await cur.fetchone()
    return row[0] if row else None


async def devices_with_open_detection(conn: AsyncConnection[Any]) -> set[int]:
    """Ids of devices with at least one open detection (their baselines are held, not refitted)."""
    cur = await conn.execute("SELECT DISTINCT device_id FROM analytics_detections WHERE open")
    return {int(r[0]) for r in await cur.fetchall()}


async def scored_until(conn: AsyncConnection[Any], device_id: int, detector: str) -> dt.datetime | None:
    """The end of the last hour scored for the device by the detector (None: never scored)."""
    cur = await conn.execute("SELECT scored_until FROM analytics_scoring_state WHERE device_id = %s AND detector = %s",
                             (device_id, detector))
    row = await cur.fetchone()
    return row[0] if row else None


async def open_at(conn: AsyncConnection[Any], device_id: int, detector: str, moment_ms: int) -> dict[str, int]:
    """The detector's channels with an episode open at ``moment_ms``: channel → confirmation ms."""
    cur = await conn.execute(
        """SELECT detector, (extract(epoch FROM detected_at) * 1000)::bigint FROM analytics_detections
            WHERE device_id = %s AND detector LIKE %s AND detected_at <= %s
              AND (cleared_at IS NULL OR cleared_at >= %s)""",
        (device_id, f"{detector}.%", at(moment_ms), at(moment_ms)))
    return {str(r[0]): int(r[1]) for r in await cur.fetchall()}


async def mark_seen(conn: AsyncConnection[Any], device_id: int, detector: str, detected_ms: int,
                    seen: dt.datetime) -> None:
    """An open episode still seen at ``seen``."""
    await conn.execute("UPDATE analytics_detections SET last_seen_at = %s WHERE device_id = %s AND detector = %s "
                       "AND detected_at = %s AND open", (seen, device_id, detector, at(detected_ms)))


async def save_scoring_state(conn: AsyncConnection[Any], device_id: int, detector: str, until: dt.datetime,
                             model_id: int, now: dt.datetime) -> None:
    """Scored up to ``until`` (never moves back: a late, shorter run does not undo a longer one)."""
    await conn.execute(
        """INSERT INTO analytics_scoring_state (device_id, detector, scored_until, model_id, updated_at)
           VALUES (%s, %s, %s, %s, %s)
           ON CONFLICT (device_id, detector) DO UPDATE SET scored_until = GREATEST(
               analytics_scoring_state.scored_until, EXCLUDED.scored_until), model_id = EXCLUDED.model_id,
               updated_at = EXCLUDED.updated_at""", (device_id, detector, until, model_id, now))


async def insert_detection(conn: AsyncConnection[Any], device_id: int, model_id: int, det: Detection) -> bool:
    """Insert the episode; False when it is already recorded (same device, detector and
    confirmation hour) or another one of the detector is still open (the unique indexes say so)."""
    cur = await conn.execute(
        """INSERT INTO analytics_detections (device_id, model_id, detector, fault, onset_at, detected_at,
                                             last_seen_at, score, message, evidence)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT DO NOTHING RETURNING id""",
        (device_id, model_id, det.detector, det.fault, at(det.start_ms), at(det.detected_ms), at(det.detected_ms),
         det.score, det.message, Jsonb(to_json_safe(det.evidence))))
    return await cur.fetchone() is not None


async def link_alarm(conn: AsyncConnection[Any], device_id: int, detector: str, detected_ms: int,
                     alarm_id: int) -> None:
    """The alarm the episode raised (or joined)."""
    await conn.execute(
        "UPDATE analytics_detections SET alarm_id = %s WHERE device_id = %s AND detector = %s AND detected_at = %s",
        (alarm_id, device_id, detector, at(detected_ms)))


async def close_detection(conn: AsyncConnection[Any], device_id: int, detector: str, detected_ms: int,
                          cleared_ms: int) -> str | None:
    """Close the open episode; its fault, or None when it was not open (already closed)."""
    cur = await conn.execute(
        "UPDATE analytics_detections SET open = false, cleared_at = %s WHERE device_id = %s AND detector = %s "
        "AND detected_at = %s AND open RETURNING fault", (at(cleared_ms), device_id, detector, at(detected_ms)))
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def fault_open(conn: AsyncConnection[Any], device_id: int, fault: str) -> bool:
    """Whether any channel still has an open episode of ``fault`` on the device."""
    cur = await conn.execute("SELECT 1 FROM analytics_detections WHERE device_id = %s AND fault = %s AND open "
                             "LIMIT 1", (device_id, fault))
    return await cur.fetchone() is not None


async def open_summaries(conn: AsyncConnection[Any], device_id: int) -> list[OpenSummary]:
    """The device's open episodes, for its health record."""
    cur = await conn.execute("SELECT detector, fault, message FROM analytics_detections WHERE device_id = %s AND open",
                             (device_id,))
    return [OpenSummary(str(r[0]), str(r[1]), str(r[2])) for r in await cur.fetchall()]


async def save_health(conn: AsyncConnection[Any], device: DeviceRef, window: tuple[dt.datetime, dt.datetime],
                      record: HealthRecord, now: dt.datetime) -> None:
    """The device's equipment health record (one row per device, replaced)."""
    await conn.execute(
        """INSERT INTO device_health (device_id, kind, window_start, window_end, record, score, deductions, updated_at)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (device_id) DO UPDATE SET kind = EXCLUDED.kind, window_start = EXCLUDED.window_start,
               window_end = EXCLUDED.window_end, record = EXCLUDED.record, score = EXCLUDED.score,
               deductions = EXCLUDED.deductions, updated_at = EXCLUDED.updated_at""",
        (device.id, device.kind, window[0], window[1], Jsonb(to_json_safe(record.figures)), record.score,
         Jsonb(to_json_safe(record.deductions)), now))
