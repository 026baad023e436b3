"""``/api/v1/devices/{id}/telemetry``: one device's series, at the resolution the span needs.

``step=auto`` picks raw rows for spans up to 2 hours, the 1-minute rollup up to 3 days and the
1-hour rollup beyond, so a 30-day chart reads ~720 rows per metric instead of millions. The
same queries run on TimescaleDB (continuous aggregates) and plain PostgreSQL (rollup tables).
Output is columnar (``t`` in epoch ms, ``v``, and ``min``/``max`` for rollups), ready for uPlot.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from cloud.api.deps import ClockDep, PoolDep
from cloud.queries.telemetry import device_code, load_points

router = APIRouter(prefix="/api/v1/devices", tags=["telemetry"])

Step = Literal["auto", "raw", "1m", "1h"]
MAX_POINTS = 200_000
RAW_MAX_SPAN = dt.timedelta(hours=2)
MINUTE_MAX_SPAN = dt.timedelta(days=3)


class Series(BaseModel):
    metric: str
    t: list[int]
    v: list[float | None]
    min: list[float | None] | None = None
    max: list[float | None] | None = None


class TelemetryOut(BaseModel):
    device_id: int
    device: str
    resolution: Literal["raw", "1m", "1h"]
    start: dt.datetime
    end: dt.datetime
    series: list[Series]
    truncated: bool


def choose_resolution(step: Step, span: dt.timedelta) -> Literal["raw", "1m", "1h"]:
    if step != "auto":
        return step
    if span <= RAW_MAX_SPAN:
        return "raw"
    return "1m" if span <= MINUTE_MAX_SPAN else "1h"


@router.get("/{device_id}/telemetry", response_model=TelemetryOut)
async def device_telemetry(
    pool: PoolDep,
    clock: ClockDep,
    device_id: int,
    metric: list[str] | None = Query(None, description="metric name(s); all metrics when absent"),
    start: dt.datetime | None = Query(None, description="ISO time; default end - 1 hour"),
    end: dt.datetime | None = Query(None, description="ISO time; default now"),
    step: Step = "auto",
) -> TelemetryOut:
    end = (end or clock.now()).astimezone(dt.UTC)
    start = (start or end - dt.timedelta(hours=1)).astimezone(dt.UTC)
    if start >= end:
        raise HTTPException(422, "start must be before end")
    resolution = choose_resolution(step, end - start)
    async with pool.connection() as conn:
        code = await device_code(conn, device_id)
        if code is None:
            raise HTTPException(404, f"device {device_id} not found")
        rows = await load_points(conn, device_id, resolution, start, end, metric, MAX_POINTS + 1)
    truncated = len(rows) > MAX_POINTS
    by_metric: dict[str, Series] = {}
    for name, t, v, lo, hi in rows[:MAX_POINTS]:
        series = by_metric.get(name)
        if series is None:
            series = by_metric[name] = Series(metric=name, t=[], v=[],
                                              min=None if resolution == "raw" else [],
                                              max=None if resolution == "raw" else [])
        series.t.append(int(t))
        series.v.append(v)
        if series.min is not None and series.max is not None:
            series.min.append(lo)
            series.max.append(hi)
    return TelemetryOut(device_id=device_id, device=code, resolution=resolution, start=start, end=end,
                        series=list(by_metric.values()), truncated=truncated)
