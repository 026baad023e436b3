"""``/api/v1/analytics``: equipment health record + score, anomaly detections, model versions.

Tenant scoping reuses the device guard of the devices router (a device of another community is a
404, not a 403, so ids do not leak).

A community's **day calendar** (issue 15): ``GET …/communities/{community}/calendar?year=`` shows
the statutory holidays and make-up workdays (from the ``holidays`` library) with the community's
own days; an admin sets (``PUT …/calendar/{day}``) or removes (``DELETE``) its own days. The
tenancy of ``{community}`` is the policy table's (another community is a 404); every change is an
``admin_audit`` row in the same transaction.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel

from cloud.analytics import calendar_store
from cloud.api.deps import AdminUser, ClockDep, PoolDep, StaffUser
from cloud.api.routers.devices import visible_device
from cloud.queries.analytics import Detection, HealthScore, load_detections, load_health_score

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])


class ModelOut(BaseModel):
    detector: str
    kind: str
    version: int
    active: bool
    trained_at: dt.datetime
    window_start: dt.datetime | None
    window_end: dt.datetime | None
    source: str
    metrics: dict[str, Any]
    limits: dict[str, float]


@router.get("/devices/{device_id}/health", response_model=HealthScore,
            summary="Equipment health record and 0-100 score of one device")
async def device_health(request: Request, pool: PoolDep, device_id: int, user: StaffUser) -> HealthScore:
    device = await visible_device(request, user, device_id)
    async with pool.connection() as conn:
        found = await load_health_score(conn, device_id, device.code)
    if found is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no health record yet (the analytics job has not scored it)")
    return found


@router.get("/devices/{device_id}/detections", response_model=list[Detection],
            summary="Anomaly detections of one device, newest first")
async def device_detections(request: Request, pool: PoolDep, device_id: int, user: StaffUser,
                            open_only: bool = False,
                            limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[Detection]:
    await visible_device(request, user, device_id)
    async with pool.connection() as conn:
        return await load_detections(conn, device_id, open_only=open_only, limit=limit)


@router.get("/models", response_model=list[ModelOut], summary="Stored model versions (JSON parameters)")
async def models(pool: PoolDep, user: StaffUser, detector: str | None = None) -> list[ModelOut]:
    from cloud.analytics.modelstore import list_models

    async with pool.connection() as conn:
        found = await list_models(conn, detector)
    return [ModelOut(detector=m.detector, kind=m.kind, version=m.version, active=m.active, trained_at=m.trained_at,
                     window_start=m.window_start, window_end=m.window_end, source=m.source, metrics=m.metrics,
                     limits={k: float(v) for k, v in (m.params.get("limits") or {}).items()})
            for m in found]


async def _zone(conn: Any, community: str) -> str:
    zone = await calendar_store.zone_of(conn, community)
    if zone is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no community {community!r}")
    return zone


@router.get("/communities/{community}/calendar", response_model=calendar_store.CalendarView,
            summary="A community's holidays and make-up workdays of a year (statutory + its own)")
async def get_calendar(community: str, pool: PoolDep, user: StaffUser, clock: ClockDep,
                       year: Annotated[int | None, Query(ge=2000, le=2099)] = None) -> calendar_store.CalendarView:
    async with pool.connection() as conn:
        zone = await _zone(conn, community)
        local_year = clock.now().astimezone(ZoneInfo(zone)).year  # the community's year, not UTC's
        return await calendar_store.view(conn, community, zone, year or local_year)


@router.put("/communities/{community}/calendar/{day}", response_model=calendar_store.CalendarView,
            summary="Set one of the community's own days (a closure day, or a statutory holiday taken back)")
async def put_calendar_day(community: str, day: dt.date, body: calendar_store.OwnDayIn, pool: PoolDep,
                           user: AdminUser, clock: ClockDep) -> calendar_store.CalendarView:
    if not 2000 <= day.year <= 2099:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, {
            "code": "invalid_request", "message": "day: a year from 2000 to 2099",
            "detail": [{"loc": ["path", "day"], "msg": "a year from 2000 to 2099", "type": "value_error"}]})
    async with pool.connection() as conn:
        zone = await _zone(conn, community)
        await calendar_store.save_day(conn, community, day, body, actor=user.username, now=clock.now())
        return await calendar_store.view(conn, community, zone, day.year)


@router.delete("/communities/{community}/calendar/{day}", response_model=calendar_store.CalendarView,
               summary="Remove one of the community's own days (the statutory calendar decides again; "
                       "idempotent: removing a day it does not have changes nothing and audits nothing)")
async def delete_calendar_day(community: str, day: dt.date, pool: PoolDep, user: AdminUser,
                              clock: ClockDep) -> calendar_store.CalendarView:
    async with pool.connection() as conn:
        zone = await _zone(conn, community)
        await calendar_store.delete_day(conn, community, day, actor=user.username, now=clock.now())
        return await calendar_store.view(conn, community, zone, day.year)
