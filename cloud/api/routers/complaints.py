"""REST for complaints (投诉): residents and staff file them, staff move them through
received → investigating → handled → feedback → closed; the trail names people.

Residents see their own (``/complaints/mine``) with the feedback they were given; a complaint of
another community is a 404 (tenant rule of :mod:`cloud.auth.deps`, ``complaint_id``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, NoReturn

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import ClockDep, CurrentUser, PolicyDep, PoolDep, ResidentUser, StaffUser, ensure_visible
from cloud.auth.roles import Role
from cloud.ops.complaints import repo
from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import IllegalTransition, InvalidRequest, NotFound, WorkOrderError
from cloud.queries.complaints import ComplaintRow, community_complaints, resident_complaints

router = APIRouter(prefix="/api/v1/complaints", tags=["complaints"])


def _raise(exc: WorkOrderError) -> NoReturn:
    if isinstance(exc, IllegalTransition):
        raise HTTPException(status.HTTP_409_CONFLICT, {"code": exc.code, "message": str(exc),
                                                       "detail": {"state": exc.state, "action": exc.action,
                                                                  "allowed": exc.allowed}}) from exc
    code = status.HTTP_404_NOT_FOUND if isinstance(exc, NotFound) else 422
    if not isinstance(exc, (NotFound, InvalidRequest)):
        code = status.HTTP_403_FORBIDDEN
    raise HTTPException(code, {"code": exc.code, "message": str(exc)}) from exc


class ComplaintIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community: str = Field(..., max_length=64)
    grade: str = Field("general", max_length=32)
    text: str = Field(..., min_length=1, max_length=4000)
    butler_id: int | None = Field(None, ge=1, lt=2**63)
    work_order_ids: list[Annotated[int, Field(ge=1, lt=2**63)]] = Field(default_factory=list, max_length=20)


class TransitionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["investigate", "handle", "feedback", "close"]
    note: str = Field("", max_length=2000)


class TrailOut(BaseModel):
    at: datetime
    action: str
    from_state: str | None
    to_state: str | None
    actor: str
    actor_name: str
    note: str


class ComplaintDetail(ComplaintRow):
    trail: list[TrailOut]


def _actor(user: Any) -> Actor:
    return Actor("user", user.id, user.name, user.role.value)


@router.post("", response_model=ComplaintRow, status_code=201)
async def file_complaint(body: ComplaintIn, user: CurrentUser, pool: PoolDep, clock: ClockDep,
                         policy: PolicyDep) -> dict[str, Any]:
    ensure_visible(user, body.community)
    async with pool.connection() as conn:
        try:
            row = await repo.file(conn, policy, repo.NewComplaint(
                community=body.community, grade=body.grade, text=body.text,
                reporter_user_id=user.id if user.role is Role.resident else None, butler_id=body.butler_id,
                work_order_ids=body.work_order_ids), clock.now(), _actor(user))
        except WorkOrderError as exc:
            _raise(exc)
    return row


@router.get("", response_model=list[ComplaintRow])
async def list_complaints(user: StaffUser, pool: PoolDep, community: str,
                          state: Annotated[str | None, Query(max_length=32)] = None,
                          limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[ComplaintRow]:
    ensure_visible(user, community)
    async with pool.connection() as conn:
        return await community_complaints(conn, community, state, limit)


@router.get("/mine", response_model=list[ComplaintRow])
async def my_complaints(user: ResidentUser, pool: PoolDep) -> list[ComplaintRow]:
    async with pool.connection() as conn:
        return await resident_complaints(conn, user.id)


@router.get("/{complaint_id}", response_model=ComplaintDetail)
async def get_complaint(complaint_id: int, user: StaffUser, pool: PoolDep) -> dict[str, Any]:
    async with pool.connection() as conn:
        try:
            row = await repo.get(conn, complaint_id)
        except WorkOrderError as exc:
            _raise(exc)
        ensure_visible(user, row["community"])
        return {**row, "trail": await repo.trail(conn, complaint_id)}


@router.post("/{complaint_id}/transitions", response_model=ComplaintRow)
async def move_complaint(complaint_id: int, body: TransitionIn, user: StaffUser, pool: PoolDep,
                         clock: ClockDep) -> dict[str, Any]:
    async with pool.connection() as conn:
        try:
            ensure_visible(user, (await repo.get(conn, complaint_id))["community"])
            return await repo.transition(conn, complaint_id, body.action, _actor(user), clock.now(), body.note)
        except WorkOrderError as exc:
            _raise(exc)


class ReplyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    satisfied: bool
    comment: str = Field("", max_length=1000)


@router.post("/{complaint_id}/reply", response_model=ComplaintRow)
async def reply_complaint(complaint_id: int, body: ReplyIn, user: CurrentUser, pool: PoolDep,
                          clock: ClockDep) -> dict[str, Any]:
    """The resident answers the feedback: satisfied closes it, not satisfied reopens the investigation."""
    async with pool.connection() as conn:
        try:
            return await repo.reply(conn, complaint_id, body.satisfied, body.comment, _actor(user), clock.now())
        except WorkOrderError as exc:
            _raise(exc)
