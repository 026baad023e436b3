"""The butler's phone page of inspection rounds (巡检): enter or scan a checkpoint's code, add a
reading, a note and a photo, tick "finding" to open a work order in one tap.

A plain form post (works without JavaScript, CSRF-protected like every page form); where the
browser has the Barcode Detection API (Chrome on Android), a "scan" button reads the QR code with
the camera and fills the code field — the QR symbol holds only the code (:mod:`cloud.ops.inspections.qr`),
so typing the printed code is the same path. The outcome is shown after the redirect (PRG).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Request, UploadFile, status
from fastapi.responses import RedirectResponse, Response

from cloud.auth.deps import PageUser, app_pool
from cloud.http.deps import get_clock, get_policy
from cloud.http.rendering import render
from cloud.ops.inspections import repo
from cloud.ops.inspections.rounds import Scan, record_scan
from cloud.ops.model.errors import WorkOrderError
from cloud.ops.workorders import queries
from cloud.web import photos

router = APIRouter(include_in_schema=False)


def _run_dir(request: Request) -> Path:
    settings = getattr(request.app.state, "settings", None)
    return Path(getattr(settings, "run_dir", ".run"))


@router.get("/inspect")
async def inspect_page(request: Request, user: PageUser) -> Response:
    async with app_pool(request).connection() as conn:
        routes = [r for r in await repo.routes(conn) if user.can_see(r.community)]
    communities = sorted({r.community for r in routes})
    ok = request.query_params.get("ok")
    wo = request.query_params.get("wo")
    return render(request, "inspect.html", user, communities=communities, routes=routes,
                  ok=ok if ok and len(ok) <= 32 else None, wo=wo if wo and wo.isdigit() else None)


@router.post("/inspect")
async def inspect_scan(request: Request, user: PageUser,
                       community: Annotated[str, Form(min_length=1, max_length=64)],
                       code: Annotated[str, Form(min_length=1, max_length=32)],
                       method: Annotated[str, Form(pattern="^(qr|code)$")] = "code",
                       reading: Annotated[str, Form(max_length=32)] = "",
                       note: Annotated[str, Form(max_length=2000)] = "",
                       finding: Annotated[str, Form(max_length=8)] = "",
                       photo: Annotated[UploadFile | None, File()] = None) -> Response:
    if not user.can_see(community):
        return render(request, "error.html", user, status.HTTP_404_NOT_FOUND, message_key="error.not_found")
    try:
        value = float(reading) if reading.strip() else None
    except ValueError:
        value = None
    if value is not None and not math.isfinite(value):  # "nan", "inf" typed in
        value = None
    data = await photo.read(photos.MAX_BYTES + 1) if photo is not None and photo.filename else b""
    try:
        ref = photos.store(_run_dir(request), community, data) if data else None
    except photos.PhotoRejected as exc:
        return render(request, "error.html", user, status.HTTP_422_UNPROCESSABLE_ENTITY, message=str(exc))
    async with app_pool(request).connection() as conn:
        actor = await queries.actor_for(conn, user.id, user.name, user.role.value)
        try:
            result = await record_scan(conn, get_policy(request), community, Scan(
                code=code, method=method, reading=value, photo=ref, note=note, finding=bool(finding)), actor,
                get_clock(request).now())
        except WorkOrderError as exc:
            status_code = 404 if exc.code == "not_found" else 422
            return render(request, "error.html", user, status_code, message=str(exc))
    target = f"/inspect?ok={result.checkpoint}" + (f"&wo={result.work_order_id}" if result.work_order_id else "")
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)
