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
