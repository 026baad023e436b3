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
import both tiers. Its SQL is the cloud's: the writes are :mod:`cloud.analytics.replay_store`, the
work order it reports is read by :func:`cloud.queries.workorders.latest_alarm_order`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import AsyncConnection

from cloud.analytics.frames import DAY_MS, HOUR_MS, HourlyFrame
from cloud.analytics.jobs import score, train
from cloud.analytics.replay_store import ensure_device, write_rollup
from cloud.queries.workorders import latest_alarm_order
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
    order = await latest_alarm_order(conn, community, device, "analytics.pump.bearing_wear")
    overload = faults[0].threshold_ms
    return ReplayResult(device_id, _at(faults[0].start_ms), detected, message,
                        _at(overload) if overload is not None else None, order)
