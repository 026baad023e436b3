"""The maintainer's phone page of a planned maintenance (计划维保): the template's checklist (pass /
fail or a reading per item, a photo where the template asks), a note, and a signature drawn with
a finger — then the order is resolved and waits for the property staff's confirmation.

The signature canvas is the only script (``/static/checklist.js``, no inline script under the
CSP): it writes the drawing as a PNG data URL into a hidden field, which the domain checks
(:func:`cloud.ops.maintenance.completion.check_signature`). Field names are per item
(``ok_<id>``, ``value_<id>``, ``photo_<id>``), so the form is read whole rather than declared.
"""

from __future__ import annotations

import math
from pathlib import Path

from fastapi import APIRouter, Request, status
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile  # what request.form() yields (fastapi's is a subclass)

from cloud.auth.deps import PageUser, app_pool
from cloud.auth.users import User
from cloud.http.deps import get_clock, get_policy
from cloud.http.rendering import render
from cloud.ops.maintenance import repo
from cloud.ops.maintenance.completion import Answer, submit
from cloud.ops.maintenance.templates import shipped
from cloud.ops.model.errors import WorkOrderError
from cloud.ops.workorders import queries
from cloud.ops.workorders import repo as wo_repo
from cloud.web import photos

router = APIRouter(include_in_schema=False)


def _run_dir(request: Request) -> Path:
    settings = getattr(request.app.state, "settings", None)
    return Path(getattr(settings, "run_dir", ".run"))


@router.get("/maintenance/{work_order_id}")
async def checklist_page(request: Request, work_order_id: int, user: PageUser) -> Response:
    async with app_pool(request).connection() as conn:
        order = await repo.find_order(conn, work_order_id)
        try:
            wo = await wo_repo.get(conn, work_order_id)
        except WorkOrderError:
            wo = None
    if wo is None or not user.can_see(wo["community"]):
        return render(request, "error.html", user, status.HTTP_404_NOT_FOUND, message_key="error.not_found")
    if order is None:
        return _not_planned(request, user, work_order_id)
    return render(request, "checklist.html", user, wo=wo, order=order, tpl=shipped().get(order["template"]))


def _not_planned(request: Request, user: User, work_order_id: int) -> Response:
    return render(request, "error.html", user, status.HTTP_409_CONFLICT,
                  message=f"工单 #{work_order_id} 不是计划维保，没有检查表 / "
                          f"work order #{work_order_id} is not a planned "
                          "maintenance: it has no checklist")


def _float(text: object) -> float | None:
    try:
        value = float(str(text)) if str(text).strip() else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) and abs(value) < 1e12 else None


@router.post("/maintenance/{work_order_id}")
async def checklist_submit(request: Request, work_order_id: int, user: PageUser) -> Response:
    form = await request.form()
    async with app_pool(request).connection() as conn:
        order = await repo.find_order(conn, work_order_id)
        if order is None:  # the order exists (the policy's assignment scope checked it) but is a repair
            return _not_planned(request, user, work_order_id)
        template = shipped().get(order["template"])
        answers: list[Answer] = []
        try:
            for item in template.items:
                upload = form.get(f"photo_{item.id}")
                ref = None
                if isinstance(upload, UploadFile) and upload.filename:
                    data = await upload.read(photos.MAX_BYTES + 1)
                    ref = photos.store(_run_dir(request), order["community"], data) if data else None
                ok = form.get(f"ok_{item.id}")
                answers.append(Answer(item.id, ok=None if ok is None else ok == "1",
                                      value=_float(form.get(f"value_{item.id}", "")), photo=ref,
                                      note=str(form.get(f"note_{item.id}", ""))[:500]))
        except photos.PhotoRejected as exc:
            return render(request, "error.html", user, status.HTTP_422_UNPROCESSABLE_ENTITY, message=str(exc))
        actor = await queries.actor_for(conn, user.id, user.name, user.role.value)
        try:
            await submit(conn, get_policy(request), shipped(), work_order_id, actor, answers,
                         str(form.get("signature", ""))[:200_000], get_clock(request).now())
        except WorkOrderError as exc:
            code = {"not_allowed": 403, "illegal_transition": 409}.get(exc.code, 422)
            return render(request, "error.html", user, code, message=str(exc))
    return RedirectResponse(f"/maintenance/{work_order_id}?done=1", status.HTTP_303_SEE_OTHER)
