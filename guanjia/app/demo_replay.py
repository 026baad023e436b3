"""The demo's accelerated bearing-wear story, replayed through the real analytics path.

Weeks of pump life cannot pass through Modbus polling during a demo, so this replays them: the
simulators' pump model (same physics and fault model as the demo fleet) runs ``days`` simulated
days — healthy first, then with ``bearing_wear`` — and its hourly aggregates are written to
``telemetry_1h`` of a registered device, ending at the current hour. Then the product path runs
unchanged: :func:`cloud.analytics.jobs.train` on the healthy weeks, :func:`cloud.analytics.jobs.score`
in 6-hour steps as the scheduled job would, the detection becomes a ``fleet`` alarm and a P3
(planned maintenance) work order routed to a butler. The motor-overload reference rule is run
over the same physics, so the result says how many simulated days before the trip the work
order was opened.

It lives in the app tier (it was ``cloud/analytics/replay.py``, reaching the simulators through
``import_module`` strings) because it is the one part of the demo that needs both the simulators'
physics (:mod:`simulators.labelled_fleet`) and the cloud's analytics jobs, and only the app may
import both tiers.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from psycopg import AsyncConnection

from cloud.analytics.frames import DAY_MS, HOUR_MS, HourlyFrame
from cloud.analytics.jobs import score, train
from simulators.labelled_fleet import single_device

if TYPE_CHECKING:
    from cloud.ops.model.policy import Policy


@dataclass(slots=True)
class ReplayResult:
    device_id: int
    wear_start: dt.datetime
    detected_at: dt.datetime | None
    message: str | None
    overload_at: dt.datetime | None
    work_order: dict[str, Any] | None

    @property
    def lead_days(self) -> float | None:
        if self.detected_at is None or self.overload_at is None:
            return None
        return (self.overload_at - self.detected_at).total_seconds() / 86_400


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


async def replay_bearing_wear(conn: AsyncConnection[Any], *, community: str = "demo", building: str = "b1",
                              device: str = "b1-pump-1", days: int = 28, wear_start_day: int = 16,
                              percent_per_day: float = 8.0, train_days: int = 14, seed: int = 7,
                              now: dt.datetime, policy: Policy | None = None) -> ReplayResult:
    """Replay ``days`` simulated days ending at the hour of ``now`` (the caller's clock: the CLI's
    ``--now`` or the system clock), so the same ``now`` gives the same story."""
    end_ms = int(now.timestamp() * 1000) // HOUR_MS * HOUR_MS
    start_ms = end_ms - days * DAY_MS
    hourly, faults = single_device("pump", device, days=days, seed=seed, start_ms=start_ms, fault="bearing_wear",
                                   fault_start_day=wear_start_day, fault_params={"percent_per_day": percent_per_day})
    frame = HourlyFrame(device=hourly.device, kind=hourly.kind, start_ms=hourly.start_ms, hours=hourly.hours,
                        avg=hourly.avg, min=hourly.min, max=hourly.max, community=hourly.community)
    device_id = await ensure_device(conn, community, building, device)
    await write_rollup(conn, device_id, frame)
    await train(conn, _at(start_ms), _at(start_ms + train_days * DAY_MS), kinds=["pump"], community=community)
    detected: dt.datetime | None = None
    message: str | None = None
    cursor = start_ms + train_days * DAY_MS
    while cursor < end_ms:
        step_end = min(end_ms, cursor + 6 * HOUR_MS)
        # health records read 30 days per device: the service refreshes them hourly, the replay once at the end
        result = await score(conn, _at(step_end), since=_at(cursor), community=community, policy=policy,
                             health=step_end >= end_ms)
        for det in result.detections:
            if det.device == device and det.fault == "bearing_wear" and detected is None:
                detected, message = _at(det.detected_ms), det.message
        cursor = step_end
    cur = await conn.execute(
        """SELECT w.id, w.priority, w.state, w.title, w.assignee_id
             FROM work_orders w JOIN alarms a ON a.id = w.alarm_id
            WHERE a.community = %s AND a.device = %s AND a.rule LIKE 'analytics.pump.current_excess%%'
            ORDER BY w.id DESC LIMIT 1""", (community, device))
    row = await cur.fetchone()
    order = dict(zip(("id", "priority", "state", "title", "assignee_id"), row, strict=True)) if row else None
    overload = faults[0].threshold_ms
    return ReplayResult(device_id, _at(faults[0].start_ms), detected, message,
                        _at(overload) if overload is not None else None, order)
