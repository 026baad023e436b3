"""REST for volunteers' points (积分): a butler's balance and ledger; staff adjustments (with a
reason) and redemptions for community services. Entries are never edited: see
:mod:`cloud.ops.points.ledger`. Another community's butler is a 404 (``butler_id`` tenant rule)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import ButlerUser, ClockDep, PoolDep, StaffUser
from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import IllegalTransition, NotFound, WorkOrderError
from cloud.ops.points import ledger, redemptions

router = APIRouter(prefix="/api/v1/butlers/{butler_id}/points", tags=["points"])


class EntryOut(BaseModel):
    id: int
    kind: str
    delta: int
    reason: str
    work_order_id: int | None
    actor_name: str
    created_at: datetime


class PointsOut(BaseModel):
    butler_id: int
    balance: int
    entries: list[EntryOut]


class AdjustIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delta: int = Field(..., ge=-100_000, le=100_000)
    reason: str = Field(..., min_length=1, max_length=500)


class RedeemIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    points: int = Field(..., ge=1, le=100_000)
    service: str = Field(..., min_length=1, max_length=500)


def _raise(exc: WorkOrderError) -> None:
    code = status.HTTP_404_NOT_FOUND if isinstance(exc, NotFound) else 422
    raise HTTPException(code, {"code": exc.code, "message": str(exc)}) from exc


async def _points(conn: Any, butler_id: int) -> dict[str, Any]:
    return {"butler_id": butler_id, "balance": await ledger.balance(conn, butler_id),
            "entries": await ledger.entries(conn, butler_id)}


@router.get("", response_model=PointsOut)
async def read_points(butler_id: int, user: ButlerUser, pool: PoolDep) -> dict[str, Any]:
    async with pool.connection() as conn:
        return await _points(conn, butler_id)


@router.post("/adjust", response_model=PointsOut)
async def adjust_points(butler_id: int, body: AdjustIn, user: StaffUser, pool: PoolDep,
                        clock: ClockDep) -> dict[str, Any]:
    async with pool.connection() as conn:
        try:
            await ledger.adjust(conn, butler_id, body.delta, body.reason, Actor("user", user.id, user.name,
                                                                               user.role.value), clock.now())
        except WorkOrderError as exc:
            _raise(exc)
        return await _points(conn, butler_id)


@router.post("/redeem", response_model=PointsOut)
async def redeem_points(butler_id: int, body: RedeemIn, user: StaffUser, pool: PoolDep,
                        clock: ClockDep) -> dict[str, Any]:
    async with pool.connection() as conn:
        try:
            await ledger.redeem(conn, butler_id, body.points, body.service, Actor("user", user.id, user.name,
                                                                                 user.role.value), clock.now())
        except WorkOrderError as exc:
            _raise(exc)
        return await _points(conn, butler_id)


redemptions_router = APIRouter(prefix="/api/v1/points/redemptions", tags=["points"])


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    approve: bool


@redemptions_router.get("", response_model=list[redemptions.Redemption])
async def pending_redemptions(user: StaffUser, pool: PoolDep, community: str) -> list[redemptions.Redemption]:
    """Volunteers' pending redemption requests of ``community``, oldest first."""
    async with pool.connection() as conn:
        return await redemptions.pending(conn, community)


@redemptions_router.post("/{redemption_id}/decision", response_model=redemptions.Redemption)
async def decide_redemption(redemption_id: int, body: DecisionIn, user: StaffUser, pool: PoolDep,
                            clock: ClockDep) -> redemptions.Redemption:
    """Approve (the ledger's redemption entry is written, never overdrawing) or refuse."""
    async with pool.connection() as conn:
        try:
            return await redemptions.decide(conn, redemption_id, body.approve,
                                            Actor("user", user.id, user.name, user.role.value), clock.now())
        except IllegalTransition as exc:
            raise HTTPException(status.HTTP_409_CONFLICT, {"code": exc.code, "message": str(exc)}) from exc
        except WorkOrderError as exc:
            _raise(exc)
            raise
