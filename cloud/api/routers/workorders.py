"""REST for work orders: list (filters, paging), detail with trail, staff-opened orders,
transitions (illegal → 409), resident reports (报事报修) and ratings.

Errors use the API's one shape ``{"error": {"code", "message", "detail"}}``; an illegal transition
is ``409`` with ``code = "illegal_transition"`` and ``detail = {"state", "action", "allowed"}``.
Another community's order is a 404 (tenant rule of :mod:`cloud.auth.deps`). Residents' phone
numbers and names are masked for viewers whose role does not need them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, NoReturn

from fastapi import APIRouter, HTTPException, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import (
    ClockDep,
    ContractorUser,
    CurrentUser,
    FieldUser,
    PolicyDep,
    PoolDep,
    ResidentUser,
    StaffUser,
    ensure_community_param,
    ensure_visible,
    scope_params,
)
from cloud.auth.deps import require_transition
from cloud.auth.roles import Role
from cloud.auth.tenancy import contractor_of
from cloud.auth.users import User
from cloud.http.i18n import pick_lang
from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import IllegalTransition, InvalidRequest, NotAllowed, NotFound, WorkOrderError
from cloud.ops.model.policy import Priority
from cloud.ops.model.states import Action, State
from cloud.ops.notify.masking import mask_name, mask_phone, mask_text
from cloud.ops.workorders import queries, repo
from cloud.ops.workorders.reports import Report, like, rate, submit_report
from cloud.ops.workorders.trail import TrailEntry, work_order_trail
from cloud.queries.butlers import butler_role
from cloud.queries.history import rule_titles
from cloud.queries.workorders import reported_by
from rules.model import Title

router = APIRouter(prefix="/api/v1", tags=["work orders"])


def raise_http(exc: WorkOrderError) -> NoReturn:
    """Map the domain errors to HTTP (one place, used by every router of this part)."""
    if isinstance(exc, IllegalTransition):
        raise HTTPException(status.HTTP_409_CONFLICT, {"code": exc.code, "message": str(exc),
                            "detail": {"state": exc.state, "action": exc.action, "allowed": exc.allowed}}) from exc
    code = {NotFound: 404, NotAllowed: 403, InvalidRequest: 422}.get(type(exc), 400)
    raise HTTPException(code, {"code": exc.code, "message": str(exc)}) from exc


class WorkOrderOut(BaseModel):
    id: int
    community: str
    building: str | None
    device: str | None
    device_kind: str | None
    skill: str
    alarm_id: int | None
    origin: str
    title: str = Field(description="the title in English")
    title_zh: str = Field(description="the title in Chinese (the default language): an alarm-born order's from "
                                      "its alarm's Chinese message; a text someone typed is the same in both")
    description: str
    location: str
    photos: list[str]
    priority: str
    state: State
    assignee_id: int | None
    escalation_level: int
    reporter_name: str | None
    reporter_phone: str | None
    respond_due: datetime
    on_site_due: datetime
    resolve_due: datetime
    accepted_at: datetime | None
    on_site_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    alarm_cleared_at: datetime | None
    created_at: datetime
    updated_at: datetime
    overdue: dict[str, bool] = {}
    rule_title: Title | None = Field(None, description="an alarm-born order's fault in Chinese and English (the "
                                                        "stored title is the edge's message); pages show it")


class WorkOrderDetail(WorkOrderOut):
    trail: list[TrailEntry] = Field(description="oldest first; names and zh/en words (?lang=, Chinese default)")
    reports: list[dict[str, Any]]
    rating: dict[str, Any] | None


class WorkOrderPage(BaseModel):
    items: list[WorkOrderOut]
    total: int
    limit: int
    offset: int


def reveals_pii(user: User, actor: Actor, wo: dict[str, Any]) -> bool:
    """Staff and the assigned butler need to call the resident back; the reporter sees their own."""
    return (user.role in (Role.admin, Role.engineer) or (actor.butler_id is not None
            and actor.butler_id == wo["assignee_id"]) or (wo["reporter_user_id"] == user.id))


def present(wo: dict[str, Any], reveal: bool, now: datetime) -> dict[str, Any]:
    out = dict(wo)
    if not reveal:
        out["reporter_name"] = mask_name(wo["reporter_name"] or "") or None
        out["reporter_phone"] = mask_phone(wo["reporter_phone"] or "") or None
        out["description"] = mask_text(wo["description"])
    out["title_zh"] = wo.get("title_zh") or wo["title"]  # a row written by hand may lack it
    out["overdue"] = repo.overdue(wo, now)
    out["rule_title"] = rule_titles().get(wo["alarm_rule"]) if wo.get("alarm_rule") else None
    return out


async def _visible(conn: Any, user: User, actor: Actor, wo_id: int) -> dict[str, Any]:
    try:
        wo = await repo.get(conn, wo_id)
    except NotFound as exc:
        raise_http(exc)
    ensure_visible(user, wo["community"])
    if (user.role is Role.resident and wo["reporter_user_id"] != user.id
            and not await reported_by(conn, wo_id, user.id)):
        raise HTTPException(404, "not found")
    if user.role is Role.butler and actor.butler_id != wo["assignee_id"]:
        role = await butler_role(conn, actor.butler_id)
        if role is None or role == "butler":  # team leads and managers see their community's orders
            raise HTTPException(404, "not found")
    return wo


@router.get("/work-orders", response_model=WorkOrderPage)
async def list_work_orders(
    user: CurrentUser, pool: PoolDep, clock: ClockDep,
    community: str | None = None,
    state: Annotated[list[State] | None, Query()] = None,
    priority: Annotated[list[Priority] | None, Query()] = None,
    assignee_id: int | None = None, device: str | None = None,
    origin: Literal["alarm", "resident", "staff", "planned", "inspection"] | None = None,
    open_only: bool = False, overdue: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Filter and page; butlers see their own orders (``mine``), residents the ones they reported."""
    ensure_community_param(user, community)
    now = clock.now()
    async with pool.connection() as conn:
        actor = await queries.actor_for(conn, user.id, user.name, user.role.value)
        if user.role is Role.butler:
            assignee_id = actor.butler_id if actor.butler_id is not None else -1
        page = await queries.list_work_orders(
            conn, scope_params(user), community=community, state=[s.value for s in state] if state else None,
            priority=list(priority) if priority else None, assignee_id=assignee_id, device=device, origin=origin,
            reporter_user_id=user.id if user.role is Role.resident else None, open_only=open_only,
            overdue=overdue, now=now, limit=limit, offset=offset)
    return {"items": [present(w, reveals_pii(user, actor, w), now) for w in page.items], "total": page.total,
            "limit": page.limit, "offset": page.offset}


@router.get("/work-orders/{wo_id}", response_model=WorkOrderDetail)
async def get_work_order(request: Request, wo_id: int, user: CurrentUser, pool: PoolDep,
                         clock: ClockDep) -> dict[str, Any]:
    async with pool.connection() as conn:
        actor = await queries.actor_for(conn, user.id, user.name, user.role.value)
        wo = await _visible(conn, user, actor, wo_id)
        wo["alarm_rule"] = await queries.alarm_rule(conn, wo["alarm_id"])
        reveal = reveals_pii(user, actor, wo)
        trail = await work_order_trail(conn, wo_id, pick_lang(request, user.lang), reveal_pii=reveal)
        reports = await queries.reports_of(conn, wo_id)
        rating = await queries.rating_of(conn, wo_id)
    shown = [{"id": r["id"], "text": r["text"] if reveal else mask_text(r["text"]), "location": r["location"],
              "photos": r["photos"], "linked": r["linked"], "created_at": r["created_at"],
              "reporter_name": r["reporter_name"] if reveal else mask_name(r["reporter_name"]),
              "reporter_phone": r["reporter_phone"] if reveal else mask_phone(r["reporter_phone"])} for r in reports]
    return present(wo, reveal, clock.now()) | {"trail": trail, "reports": shown, "rating": rating}


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Action
    note: str = Field("", max_length=2000)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)
    assignee_id: int | None = None


@router.post("/work-orders/{wo_id}/transitions", response_model=WorkOrderOut,
             responses={409: {"description": "illegal transition: error.detail = {state, action, allowed}"}})
async def transition(request: Request, wo_id: int, body: TransitionIn, user: FieldUser,
                     pool: PoolDep, clock: ClockDep, policy: PolicyDep) -> dict[str, Any]:
    """Move the order through its state machine (accept, depart, arrive, hold, resume, resolve, close …).

    Who may take which action is the policy's :data:`~cloud.auth.policy.TRANSITIONS` table, checked
    by the same function as the web inbox's buttons (cancel, close and reopen are staff's)."""
    if body.action is Action.auto_close:
        raise HTTPException(422, "auto_close is done by the system when an alarm clears")
    require_transition(request, body.action.value)
    async with pool.connection() as conn:
        actor = await queries.actor_for(conn, user.id, user.name, user.role.value)
        await _visible(conn, user, actor, wo_id)
        try:
            async with conn.transaction():
                wo = await repo.transition(conn, policy, wo_id, body.action, actor, clock.now(), note=body.note,
                                           lat=body.lat, lon=body.lon, assignee_id=body.assignee_id)
        except WorkOrderError as exc:
            raise_http(exc)
    return present(wo, True, clock.now())


class OrderIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community: str
    title: str = Field(..., min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    building: str | None = None
    device: str | None = None
    location: str = Field("", max_length=200)
    priority: Priority | None = None
    photos: list[str] = Field(default_factory=list, max_length=10)


class ReportIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community: str
    text: str = Field(..., min_length=1, max_length=4000)
    building: str | None = None
    device: str | None = None
    location: str = Field("", max_length=200)
    photos: list[str] = Field(default_factory=list, max_length=10)
    reporter_name: str | None = Field(None, max_length=100)
    reporter_phone: str | None = Field(None, max_length=40)


class ReportOut(BaseModel):
    work_order_id: int
    linked: bool
    state: State


@router.post("/work-orders", response_model=ReportOut, status_code=201)
async def open_by_staff(body: OrderIn, user: StaffUser, pool: PoolDep, clock: ClockDep,
                        policy: PolicyDep) -> dict[str, Any]:
    """Staff open an order by hand (patrol finding, phone call)."""
    ensure_visible(user, body.community)
    async with pool.connection() as conn:
        actor = await queries.actor_for(conn, user.id, user.name, user.role.value)
        try:
            wo, linked = await submit_report(conn, policy, Report(
                community=body.community, text=body.description or body.title, title=body.title,
                building=body.building, device=body.device, location=body.location, photos=body.photos,
                priority=body.priority), clock.now(), actor, origin="staff")
        except WorkOrderError as exc:
            raise_http(exc)
    return {"work_order_id": wo["id"], "linked": linked, "state": wo["state"]}


@router.post("/reports", response_model=ReportOut, status_code=201)
async def resident_report(body: ReportIn, user: ResidentUser, pool: PoolDep, clock: ClockDep,
                          policy: PolicyDep) -> dict[str, Any]:
    """报事报修: a resident reports a fault; linked to the device's open order if there is one."""
    ensure_visible(user, body.community)
    async with pool.connection() as conn:
        actor = Actor("user", user.id, user.name, user.role.value)
        try:
            wo, linked = await submit_report(conn, policy, Report(
                community=body.community, text=body.text, building=body.building, device=body.device,
                location=body.location, photos=body.photos, reporter_name=body.reporter_name or user.name,
                reporter_phone=body.reporter_phone or user.phone or "", reporter_user_id=user.id),
                clock.now(), actor)
        except WorkOrderError as exc:
            raise_http(exc)
    return {"work_order_id": wo["id"], "linked": linked, "state": wo["state"]}


class RatingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stars: int = Field(..., ge=1, le=5)
    comment: str = Field("", max_length=2000)


@router.post("/work-orders/{wo_id}/rating", response_model=WorkOrderOut)
async def rate_order(wo_id: int, body: RatingIn, user: ResidentUser, pool: PoolDep, clock: ClockDep,
                     policy: PolicyDep) -> dict[str, Any]:
    async with pool.connection() as conn:
        actor = Actor("user", user.id, user.name, user.role.value)
        await _visible(conn, user, actor, wo_id)
        try:
            wo = await rate(conn, policy, wo_id, body.stars, body.comment, actor, clock.now())
        except WorkOrderError as exc:
            raise_http(exc)
    return present(wo, True, clock.now())


@router.post("/work-orders/{wo_id}/like", response_model=WorkOrderOut)
async def like_order(wo_id: int, user: ResidentUser, pool: PoolDep, clock: ClockDep,
                     policy: PolicyDep) -> dict[str, Any]:
    """The resident likes the butler's work on their resolved order (点赞; once; counts to the star level)."""
    async with pool.connection() as conn:
        actor = Actor("user", user.id, user.name, user.role.value)
        wo = await _visible(conn, user, actor, wo_id)
        try:
            await like(conn, policy, wo_id, actor, clock.now())
        except WorkOrderError as exc:
            raise_http(exc)
    return present(wo, True, clock.now())


@router.get("/contractor/orders", response_model=WorkOrderPage)
async def contractor_orders(user: ContractorUser, pool: PoolDep, clock: ClockDep, open_only: bool = False,
                            limit: Annotated[int, Query(ge=1, le=500)] = 50,
                            offset: Annotated[int, Query(ge=0)] = 0) -> dict[str, Any]:
    """A contractor's view: the orders assigned to their company's field staff, in their communities."""
    now = clock.now()
    async with pool.connection() as conn:
        company = await contractor_of(conn, user.id)
        page = await queries.contractor_orders(conn, company if company is not None else -1, list(user.communities),
                                               open_only=open_only, limit=limit, offset=offset)
    return {"items": [present(w, True, now) for w in page.items], "total": page.total, "limit": page.limit,
            "offset": page.offset}
