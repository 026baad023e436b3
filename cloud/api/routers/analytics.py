"""``/api/v1/analytics``: equipment health record + score, anomaly detections, model versions.

Tenant scoping reuses the device guard of the devices router (a device of another community is a
404, not a 403, so ids do not leak).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel

from cloud.api.deps import PoolDep, StaffUser
from cloud.api.routers.devices import visible_device

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])


class Deduction(BaseModel):
    points: int
    reason: str


class HealthOut(BaseModel):
    device_id: int
    device: str
    kind: str
    score: int
    window_start: dt.datetime
    window_end: dt.datetime
    updated_at: dt.datetime
    figures: dict[str, Any]
    deductions: list[Deduction]


class DetectionOut(BaseModel):
    id: int
    detector: str
    fault: str
    onset_at: dt.datetime
    detected_at: dt.datetime
    last_seen_at: dt.datetime
    cleared_at: dt.datetime | None
    open: bool
    score: float
    message: str
    evidence: dict[str, Any]
    alarm_id: int | None
    model_version: int | None


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


@router.get("/devices/{device_id}/health", response_model=HealthOut,
            summary="Equipment health record and 0-100 score of one device")
async def device_health(request: Request, pool: PoolDep, device_id: int, user: StaffUser) -> HealthOut:
    device = await visible_device(request, user, device_id)
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT kind, score, window_start, window_end, updated_at, record, deductions "
            "FROM device_health WHERE device_id = %s", (device_id,))
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no health record yet (the analytics job has not scored it)")
    return HealthOut(device_id=device_id, device=device.code, kind=row[0], score=row[1], window_start=row[2],
                     window_end=row[3], updated_at=row[4], figures=row[5],
                     deductions=[Deduction(**d) for d in row[6]])


@router.get("/devices/{device_id}/detections", response_model=list[DetectionOut],
            summary="Anomaly detections of one device, newest first")
async def device_detections(request: Request, pool: PoolDep, device_id: int, user: StaffUser,
                            open_only: bool = False,
                            limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[DetectionOut]:
    await visible_device(request, user, device_id)
    async with pool.connection() as conn:
        cur = await conn.execute(
            """SELECT d.id, d.detector, d.fault, d.onset_at, d.detected_at, d.last_seen_at, d.cleared_at, d.open,
                      d.score, d.message, d.evidence, d.alarm_id, m.version
                 FROM analytics_detections d LEFT JOIN analytics_models m ON m.id = d.model_id
                WHERE d.device_id = %s AND (NOT %s OR d.open)
                ORDER BY d.detected_at DESC LIMIT %s""", (device_id, open_only, limit))
        rows = await cur.fetchall()
    return [DetectionOut(id=r[0], detector=r[1], fault=r[2], onset_at=r[3], detected_at=r[4], last_seen_at=r[5],
                         cleared_at=r[6], open=r[7], score=r[8], message=r[9], evidence=r[10], alarm_id=r[11],
                         model_version=r[12]) for r in rows]


@router.get("/models", response_model=list[ModelOut], summary="Stored model versions (JSON parameters)")
async def models(pool: PoolDep, user: StaffUser, detector: str | None = None) -> list[ModelOut]:
    from cloud.analytics.modelstore import list_models

    async with pool.connection() as conn:
        found = await list_models(conn, detector)
    return [ModelOut(detector=m.detector, kind=m.kind, version=m.version, active=m.active, trained_at=m.trained_at,
                     window_start=m.window_start, window_end=m.window_end, source=m.source, metrics=m.metrics,
                     limits={k: float(v) for k, v in (m.params.get("limits") or {}).items()})
            for m in found]
