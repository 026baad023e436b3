"""REST for planned maintenance (计划维保): templates, plans with each device's next due date, and
the two steps that complete a planned work order (the maintainer's checklist and signature, then
the property staff's confirmation).

Authorization is the policy table's (:mod:`cloud.auth.policy`): plans are staff's, per community
(``?community=``; a plan's body community is checked here, a foreign one is a 404 like the rest);
the checklist of a work order follows the order's assignment scope. Domain errors map through
:func:`cloud.api.routers.workorders.raise_http` (422 for an incomplete checklist, 409 for a
transition the order's state does not allow).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import ButlerUser, ClockDep, FieldUser, PolicyDep, PoolDep, StaffUser, ensure_visible
from cloud.api.routers.workorders import raise_http
from cloud.ops.maintenance import completion, repo
from cloud.ops.maintenance.templates import Catalog, Template, shipped
from cloud.ops.maintenance.views import PlanHistoryOut, PlanOut, plan_history, plan_view
from cloud.ops.model.errors import WorkOrderError
from cloud.ops.workorders import queries
from cloud.ops.workorders import repo as wo_repo

router = APIRouter(prefix="/api/v1", tags=["maintenance"])


def catalog() -> Catalog:
    return shipped()


def _template_out(template_id: str, t: Template) -> dict[str, Any]:
    return {"id": template_id, "kind": t.kind, "skill": t.skill, "name": t.name.model_dump(),
            "interval": t.interval.model_dump(exclude_none=True), "bounds": t.bounds.model_dump(),
            "lead_days": t.lead_days, "run_based": t.run_based.model_dump() if t.run_based else None,
            "items": [i.model_dump(exclude_none=True) for i in t.items]}


@router.get("/maintenance/templates")
async def list_templates(user: ButlerUser) -> list[dict[str, Any]]:
    """The checklist templates plans can use (shipped: lift, pump, gate, meter)."""
    return [_template_out(tid, t) for tid, t in sorted(catalog().templates.items())]


async def _plan_out(conn: Any, plan: repo.Plan, now: datetime) -> PlanOut:
    return await plan_view(conn, catalog(), plan, now)


@router.get("/maintenance/plans")
async def list_plans(user: StaffUser, pool: PoolDep, clock: ClockDep,
                     community: Annotated[str, Query(min_length=1, max_length=64)]) -> list[PlanOut]:
    """A community's active plans, each device with its last completion, next due date and why."""
    ensure_visible(user, community)
    async with pool.connection() as conn:
        return [await _plan_out(conn, plan, clock.now()) for plan in await repo.active_plans(conn, community)]


class PlanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community: str = Field(min_length=1, max_length=64)
    scope: Literal["device", "building", "community"]
    target: str = Field("", max_length=64)
    template: str = Field(min_length=1, max_length=64)
    starts_on: date
    interval_days: int | None = Field(None, gt=0, le=3660)
    lead_days: int | None = Field(None, ge=0, le=90)
    condition_based: bool = False
    assignee_id: int | None = Field(None, gt=0, lt=2**63)


@router.post("/maintenance/plans", status_code=201)
async def create_plan(body: PlanIn, user: StaffUser, pool: PoolDep, clock: ClockDep) -> PlanOut:
    ensure_visible(user, body.community)
    async with pool.connection() as conn:
        try:
            async with conn.transaction():
                plan = await repo.create_plan(conn, catalog(), now=clock.now(), **body.model_dump())
        except WorkOrderError as exc:
            raise_http(exc)
        return await _plan_out(conn, plan, clock.now())


class PlanEditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    interval_days: int | None = Field(None, gt=0, le=3660)
    lead_days: int | None = Field(None, ge=0, le=90)
    condition_based: bool = False
    assignee_id: int | None = Field(None, gt=0, lt=2**63)
    active: bool = True


@router.get("/maintenance/plans/{plan_id}")
async def get_plan(plan_id: Annotated[int, Path(gt=0, lt=2**63)], user: StaffUser, pool: PoolDep,
                   clock: ClockDep) -> PlanHistoryOut:
    """A plan with its history: every planned order, the completed ones with checklist, readings,
    photos and both signatures (the plan page shows the same model)."""
    async with pool.connection() as conn:
        try:
            return await plan_history(conn, catalog(), plan_id, clock.now())
        except WorkOrderError as exc:
            raise_http(exc)


@router.put("/maintenance/plans/{plan_id}")
async def edit_plan(plan_id: Annotated[int, Path(gt=0, lt=2**63)], body: PlanEditIn, user: StaffUser,
                    pool: PoolDep, clock: ClockDep) -> PlanOut:
    """Change a plan's interval, lead, condition-based switch or assignee, or retire it (``active: false``)."""
    async with pool.connection() as conn:
        try:
            async with conn.transaction():
                plan = await repo.update_plan(conn, catalog(), plan_id, **body.model_dump())
        except WorkOrderError as exc:
            raise_http(exc)
        return await _plan_out(conn, plan, clock.now())


@router.get("/work-orders/{wo_id}/maintenance")
async def get_checklist(wo_id: int, user: FieldUser, pool: PoolDep) -> dict[str, Any]:
    """The planned order's template and record (``planned: false`` for an ordinary repair order)."""
    async with pool.connection() as conn:
        try:
            wo = await wo_repo.get(conn, wo_id)
        except WorkOrderError as exc:
            raise_http(exc)
        ensure_visible(user, wo["community"])
        order = await repo.find_order(conn, wo_id)
    if order is None:
        return {"planned": False}
    shown = {k: v for k, v in order.items() if k not in ("maintainer_signature", "staff_signature")}
    return {"planned": True, "template": _template_out(order["template"], catalog().get(order["template"])),
            "order": shown | {"maintainer_signed": bool(order["maintainer_signature"]),
                              "staff_signed": bool(order["staff_signature"])}}


class AnswerIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=64)
    ok: bool | None = None
    value: float | None = Field(None, allow_inf_nan=False)
    photo: str | None = Field(None, max_length=300)
    note: str = Field("", max_length=500)


class SubmitIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    answers: list[AnswerIn] = Field(max_length=200)
    signature: str = Field(max_length=completion.MAX_SIGNATURE)


class ConfirmIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    signature: str = Field(max_length=completion.MAX_SIGNATURE)


@router.post("/work-orders/{wo_id}/maintenance/submit")
async def submit(wo_id: int, body: SubmitIn, user: FieldUser, pool: PoolDep, clock: ClockDep,
                 policy: PolicyDep) -> dict[str, Any]:
    """The maintainer's checklist, readings, photos and signature: resolves the order."""
    async with pool.connection() as conn:
        actor = await queries.actor_for(conn, user.id, user.name, user.role.value)
        answers = [completion.Answer(**a.model_dump()) for a in body.answers]
        try:
            wo = await completion.submit(conn, policy, catalog(), wo_id, actor, answers, body.signature, clock.now())
        except WorkOrderError as exc:
            raise_http(exc)
    return {"id": wo["id"], "state": wo["state"]}


@router.post("/work-orders/{wo_id}/maintenance/confirm")
async def confirm(wo_id: int, body: ConfirmIn, user: StaffUser, pool: PoolDep, clock: ClockDep,
                  policy: PolicyDep) -> dict[str, Any]:
    """The property staff's confirmation and signature: closes the order, the maintenance is completed."""
    async with pool.connection() as conn:
        actor = await queries.actor_for(conn, user.id, user.name, user.role.value)
        try:
            wo = await completion.confirm(conn, policy, wo_id, actor, body.signature, clock.now())
        except WorkOrderError as exc:
            raise_http(exc)
    return {"id": wo["id"], "state": wo["state"]}
