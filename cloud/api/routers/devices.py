"""``/api/v1/devices``: the fleet for engineers — devices with state, charts, health, live values.

Every route is tenant-scoped: the device list only ever contains the caller's communities, and a
device of another community answers 404 (the same as a device that does not exist). Admins and
engineers only (``StaffUser``); butlers and residents work through work orders.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, Field
from sse_starlette import EventSourceResponse

from cloud.api.deps import ClockDep, PoolDep, StaffUser, get_clock
from cloud.auth.users import User
from cloud.queries.device_values import (
    DeviceValues,
    PointDisplay,
    device_context,
    display_of,
    load_device_values,
    shown,
)
from cloud.queries.fleet import KINDS, STATES, DeviceRow, FleetFilter, load_device, load_fleet
from cloud.queries.health import CounterHealth, load_health
from cloud.queries.history import DeviceAlarm, DeviceWorkOrder, device_alarms, device_work_orders
from cloud.queries.series import MAX_RANGE, load_series, metric_names
from cloud.queries.telemetry import last_values_since

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])

Code = Annotated[str, Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]
RangeName = Literal["1h", "24h", "7d", "30d", "365d"]
RANGES: dict[str, dt.timedelta] = {"1h": dt.timedelta(hours=1), "24h": dt.timedelta(days=1),
                                   "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30),
                                   "365d": dt.timedelta(days=365)}
LIVE_POLL_S = 2.0
LIVE_MAX_S = 3600.0


class DeviceOut(BaseModel):
    id: int
    code: str
    name: str
    kind: str
    community: str
    building: str | None
    floor: int | None
    lat: float | None
    lon: float | None
    gateway_id: int | None
    gateway: str | None
    state: str = Field(description="online | alarming | maintenance | offline | unknown")
    last_seen: dt.datetime | None
    active_alarms: int
    open_work_orders: int

    @classmethod
    def of(cls, d: DeviceRow) -> DeviceOut:
        return cls(id=d.id, code=d.code, name=d.name, kind=d.kind, community=d.community, building=d.building,
                   floor=d.floor, lat=d.lat, lon=d.lon, gateway_id=d.gateway_id, gateway=d.gateway,
                   state=d.state, last_seen=d.last_time, active_alarms=d.alarms,
                   open_work_orders=d.open_work_orders)


class FleetOut(BaseModel):
    counts: dict[str, int]
    total: int
    devices: list[DeviceOut]


class SeriesOut(BaseModel):
    device_id: int
    metric: str
    source: str = Field(description="telemetry | telemetry_1m | telemetry_1h")
    step_s: int
    start: dt.datetime
    end: dt.datetime
    display: PointDisplay = Field(description="label, unit, precision; kind state = draw as bands")
    timezone: str = Field(description="the community's time zone (the chart's axis)")
    t: list[float] = Field(description="bucket start, epoch seconds")
    avg: list[float | None]
    min: list[float | None]
    max: list[float | None]


async def visible_device(request: Request, user: User, device_id: int) -> DeviceRow:
    pool = request.app.state.pool
    async with pool.connection() as conn:
        device = await load_device(conn, user, device_id, now=get_clock(request).now())
    if device is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "device not found")
    return device


@router.get("", response_model=FleetOut, summary="Devices with their state (tenant-scoped, filterable)")
async def list_devices(
    pool: PoolDep, user: StaffUser, clock: ClockDep,
    community: Code | None = None, building: Code | None = None,
    kind: Annotated[str | None, Query(max_length=32, description=f"one of {', '.join(KINDS)}")] = None,
    state: Annotated[str | None, Query(max_length=16, description=f"one of {', '.join(STATES)}")] = None,
    q: Annotated[str | None, Query(max_length=100, description="search code, name, building")] = None,
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> FleetOut:
    if community is not None and not user.can_see(community):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "community not found")
    async with pool.connection() as conn:
        fleet = await load_fleet(conn, user, FleetFilter(community, building, kind, state, q), limit=limit,
                                 now=clock.now())
    return FleetOut(counts=fleet.counts, total=fleet.total, devices=[DeviceOut.of(d) for d in fleet.devices])


@router.get("/{device_id}", response_model=DeviceOut, summary="One device")
async def get_device(request: Request, device_id: int, user: StaffUser) -> DeviceOut:
    return DeviceOut.of(await visible_device(request, user, device_id))


@router.get("/{device_id}/metrics", response_model=list[str], summary="Numeric metrics the device reports")
async def get_metrics_of(request: Request, pool: PoolDep, device_id: int, user: StaffUser) -> list[str]:
    await visible_device(request, user, device_id)
    async with pool.connection() as conn:
        return await metric_names(conn, device_id)


@router.get("/{device_id}/series", response_model=SeriesOut,
            summary="Chart data of one metric over any range (raw, 1-minute or 1-hour rollups)")
async def get_series(
    request: Request, pool: PoolDep, device_id: int, user: StaffUser,
    metric: Annotated[str, Query(min_length=1, max_length=64)],
    range_: Annotated[RangeName | None, Query(alias="range")] = None,
    start: dt.datetime | None = None, end: dt.datetime | None = None,
) -> SeriesOut:
    await visible_device(request, user, device_id)
    end = _utc(end) if end else get_clock(request).now()
    if start is None:
        start = end - RANGES[range_ or "24h"]
    start = _utc(start)
    if start >= end or end - start > MAX_RANGE:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "start must be before end, at most 10 years apart")
    async with pool.connection() as conn:
        series = await load_series(conn, device_id, metric, start, end)
        profile, tz = await device_context(conn, device_id)
    if series is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"unknown metric {metric!r}")
    return SeriesOut(device_id=device_id, metric=metric, source=series.source, step_s=series.step_s, start=start,
                     end=end, display=display_of(profile, metric), timezone=tz, t=series.times, avg=series.avg,
                     min=series.min, max=series.max)


@router.get("/{device_id}/values", response_model=DeviceValues,
            summary="Current values by group, with labels, units, enum words, set flags and counter increases")
async def get_values(request: Request, pool: PoolDep, device_id: int, user: StaffUser) -> DeviceValues:
    await visible_device(request, user, device_id)
    async with pool.connection() as conn:
        return await load_device_values(conn, device_id, get_clock(request).now())


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    try:
        return moment.astimezone(dt.UTC)
    except (OverflowError, ValueError) as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_ENTITY, "time out of range") from exc


@router.get("/{device_id}/health", response_model=CounterHealth, summary="Equipment health record")
async def get_health(request: Request, pool: PoolDep, device_id: int, user: StaffUser) -> CounterHealth:
    device = await visible_device(request, user, device_id)
    async with pool.connection() as conn:
        return await load_health(conn, device_id, device.kind, get_clock(request).now())


@router.get("/{device_id}/alarms", response_model=list[DeviceAlarm], summary="Alarm history of the device")
async def get_device_alarms(request: Request, pool: PoolDep, device_id: int, user: StaffUser,
                            limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[DeviceAlarm]:
    device = await visible_device(request, user, device_id)
    async with pool.connection() as conn:
        return await device_alarms(conn, device.community, device.code, limit)


@router.get("/{device_id}/workorders", response_model=list[DeviceWorkOrder], summary="Work orders of the device")
async def get_device_work_orders(request: Request, pool: PoolDep, device_id: int, user: StaffUser,
                                 limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[DeviceWorkOrder]:
    device = await visible_device(request, user, device_id)
    async with pool.connection() as conn:
        return await device_work_orders(conn, device.community, device.code, limit)


@router.get("/{device_id}/live", summary="Live values (server-sent events)",
            response_description="text/event-stream of `values` events: {metric: {v, t, zh, en, flags}} "
                                 "(the value, its time in epoch ms and its texts as in /values)")
async def live(request: Request, device_id: int, user: StaffUser) -> EventSourceResponse:
    await visible_device(request, user, device_id)
    pool = request.app.state.pool
    return EventSourceResponse(_live_values(request, pool, device_id), ping=15)


async def _live_values(request: Request, pool: Any, device_id: int) -> AsyncIterator[dict[str, str]]:
    """Poll the last-value table and send what changed. Why polling: the last-value table is
    what the rollup refresher maintains, one small indexed read every 2 s per open page is cheap,
    and it needs no extra channel from ingest. The stream ends after an hour; EventSource
    reconnects by itself."""
    since = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + LIVE_MAX_S
    async with asyncio.timeout(10), pool.connection() as conn:
        profile, _tz = await device_context(conn, device_id)
    while loop.time() < deadline and not await request.is_disconnected():
        async with asyncio.timeout(10), pool.connection() as conn:
            rows = await last_values_since(conn, device_id, since)
        if rows:
            since = max(r.time for r in rows)
            values = {}
            for r in rows:
                value = r.value if r.value is not None else r.value_text
                one = shown(profile, r.metric, value, r.time)
                values[r.metric] = {"v": value, "t": int(r.time.timestamp() * 1000), "zh": one.text.zh,
                                    "en": one.text.en,
                                    "flags": [f.model_dump() for f in one.flags] if one.flags is not None else None}
            yield {"event": "values", "data": orjson.dumps(values).decode()}
        await asyncio.sleep(LIVE_POLL_S)
