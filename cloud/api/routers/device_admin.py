"""``/api/v1/admin/devices``: devices in bulk — CSV import (all or nothing, errors by line) and export.

Admins only. The body of an import is the CSV itself (``Content-Type: text/csv``, UTF-8, at most
5 MB): ``curl --data-binary @devices.csv -H 'Content-Type: text/csv' …/api/v1/admin/devices/import``.
The checks and the columns are :mod:`cloud.registry.device_import`'s; a file with any error is
answered **422** ``invalid_csv`` with every error (``line``, ``column``, ``message``) and nothing is
written. A successful import is a row of the admin audit log.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, status
from fastapi.responses import Response
from pydantic import BaseModel

from cloud.api.deps import AdminUser, ClockDep, PoolDep
from cloud.db import audit
from cloud.registry.device_import import check_csv, export_csv, load_registry, write_devices

router = APIRouter(prefix="/api/v1/admin/devices", tags=["admin"])

MAX_BYTES = 5 * 1024 * 1024


class ImportOut(BaseModel):
    rows: int
    created: int
    updated: int


@router.post("/import", response_model=ImportOut, summary="Create or update devices from a CSV file (all or nothing)")
async def import_devices(request: Request, pool: PoolDep, user: AdminUser, clock: ClockDep) -> ImportOut:
    raw = await request.body()
    if len(raw) > MAX_BYTES:
        raise HTTPException(status.HTTP_413_CONTENT_TOO_LARGE, f"at most {MAX_BYTES // 1024 // 1024} MB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, {
            "code": "invalid_csv", "message": "the file is not UTF-8 (save it as CSV UTF-8)",
            "detail": [{"line": 1, "column": "file", "message": str(exc)[:200]}]}) from exc
    async with pool.connection() as conn:
        registry = await load_registry(conn)
        rows, errors = check_csv(text.replace("\x00", ""), registry)
        if errors:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, {
                "code": "invalid_csv", "message": f"{len(errors)} errors; nothing was imported",
                "detail": [{"line": e.line, "column": e.column, "message": e.message} for e in errors[:500]]})
        created, updated = await write_devices(conn, rows, registry)
        await audit.record(conn, at=clock.now(), actor=user.username, action="devices.imported",
                           target=f"{len(rows)} devices",
                           detail={"created": created, "updated": updated,
                                   "communities": sorted({r.community for r in rows})})
    return ImportOut(rows=len(rows), created=created, updated=updated)


@router.get("/export", summary="Every device as CSV, in the import's columns")
async def export_devices(pool: PoolDep, user: AdminUser,
                         community: Annotated[str | None, Query(max_length=64)] = None) -> Response:
    async with pool.connection() as conn:
        text = await export_csv(conn, community)
    return Response(text, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="devices.csv"'})
