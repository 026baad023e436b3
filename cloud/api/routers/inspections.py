"""REST for inspection rounds (巡检): routes with their checkpoints, printable QR codes, scans from
the butler's phone (a finding opens a work order) and coverage per local day.

Authorization is the policy table's (:mod:`cloud.auth.policy`): routes and coverage are the
staff's, per community; scanning is the workers' (staff and butlers with a butler record); a
body's community is checked here (another community's is a 404, as everywhere).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import ButlerUser, ClockDep, PolicyDep, PoolDep, StaffUser, ensure_visible
from cloud.api.routers.workorders import raise_http
from cloud.ops.inspections import qr, repo
from cloud.ops.inspections.rounds import Scan, coverage, record_scan
from cloud.ops.inspections.views import RouteDetailOut, RouteOut, route_detail, route_view
from cloud.ops.model.errors import WorkOrderError
from cloud.ops.workorders import queries

router = APIRouter(prefix="/api/v1/inspections", tags=["inspections"])

Community = Annotated[str, Query(min_length=1, max_length=64)]


class CheckpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    building: str | None = Field(None, max_length=64)
    device: str | None = Field(None, max_length=64)
    reading_unit: str = Field("", max_length=16)


class RouteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=200)
    every_hours: int = Field(ge=1, le=24, description="a slot every N hours from local midnight (N divides 24)")
    grace_minutes: int = Field(30, ge=0, le=720)
    checkpoints: list[CheckpointIn] = Field(min_length=1, max_length=200)


async def _route_out(conn: Any, route: repo.Route) -> RouteOut:
    return await route_view(conn, route)


class RouteEditIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    every_hours: int = Field(ge=1, le=24)
    grace_minutes: int = Field(30, ge=0, le=720)
    add_checkpoints: list[CheckpointIn] = Field(default_factory=list, max_length=200)
    active: bool = True


@router.post("/routes", status_code=201)
async def create_route(body: RouteIn, user: StaffUser, pool: PoolDep, clock: ClockDep) -> RouteOut:
    ensure_visible(user, body.community)
    async with pool.connection() as conn:
        try:
            async with conn.transaction():
                route = await repo.create_route(
                    conn, community=body.community, name=body.name, every_hours=body.every_hours,
                    grace_minutes=body.grace_minutes, now=clock.now(),
                    checkpoints=[repo.NewCheckpoint(**cp.model_dump()) for cp in body.checkpoints])
        except WorkOrderError as exc:
            raise_http(exc)
        return await _route_out(conn, route)


@router.get("/routes")
async def list_routes(user: ButlerUser, pool: PoolDep, community: Community) -> list[RouteOut]:
    ensure_visible(user, community)
    async with pool.connection() as conn:
        return [await _route_out(conn, route) for route in await repo.routes(conn, community)]


@router.get("/routes/{route_id}")
async def get_route(route_id: Annotated[int, Path(gt=0, lt=2**63)], user: StaffUser, pool: PoolDep,
                    clock: ClockDep) -> RouteDetailOut:
    """A route with its checkpoints and the last 7 local days' coverage with the missed checkpoints."""
    async with pool.connection() as conn:
        try:
            return await route_detail(conn, route_id, clock.now())
        except WorkOrderError as exc:
            raise_http(exc)


@router.put("/routes/{route_id}")
async def edit_route(route_id: Annotated[int, Path(gt=0, lt=2**63)], body: RouteEditIn, user: StaffUser,
                     pool: PoolDep) -> RouteOut:
    """Rename, change frequency or grace, append checkpoints (codes of the others stay), or retire."""
    async with pool.connection() as conn:
        try:
            async with conn.transaction():
                route = await repo.update_route(
                    conn, route_id, name=body.name, every_hours=body.every_hours, grace_minutes=body.grace_minutes,
                    add=[repo.NewCheckpoint(**cp.model_dump()) for cp in body.add_checkpoints], active=body.active)
        except WorkOrderError as exc:
            raise_http(exc)
        return await _route_out(conn, route)


@router.get("/qr", response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}})
async def checkpoint_qr(user: StaffUser, pool: PoolDep, community: Community,
                        code: Annotated[str, Query(min_length=1, max_length=32)]) -> Response:
    """The checkpoint's QR code as SVG, to print (the code is also printed beneath it)."""
    ensure_visible(user, community)
    async with pool.connection() as conn:
        try:
            _, cp = await repo.checkpoint_by_code(conn, community, code)
        except WorkOrderError as exc:
            raise_http(exc)
    return Response(qr.svg(cp.code, cp.name), media_type="image/svg+xml")


class ScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    community: str = Field(min_length=1, max_length=64)
    code: str = Field(min_length=1, max_length=32)
    method: Literal["qr", "code"] = "qr"
    reading: float | None = Field(None, allow_inf_nan=False)
    photo: str | None = Field(None, max_length=300)
    note: str = Field("", max_length=2000)
    finding: bool = False


@router.post("/scans", status_code=201)
async def scan(body: ScanIn, user: ButlerUser, pool: PoolDep, clock: ClockDep, policy: PolicyDep) -> dict[str, Any]:
    """One checkpoint visited: time, optional reading, photo and note; ``finding`` opens a work order."""
    ensure_visible(user, body.community)
    async with pool.connection() as conn:
        actor = await queries.actor_for(conn, user.id, user.name, user.role.value)
        try:
            result = await record_scan(conn, policy, body.community, Scan(
                code=body.code, method=body.method, reading=body.reading, photo=body.photo, note=body.note,
                finding=body.finding), actor, clock.now())
        except WorkOrderError as exc:
            raise_http(exc)
    return {"scan_id": result.scan_id, "checkpoint": result.checkpoint, "work_order_id": result.work_order_id}


@router.get("/coverage")
async def get_coverage(user: StaffUser, pool: PoolDep, clock: ClockDep, community: Community,
                       day: Annotated[date, Query(ge=date(2000, 1, 1), le=date(2099, 12, 31))]) -> list[dict[str, Any]]:
    """Per route, the local ``day``'s closed checkpoint-slots: expected, covered, missed, ratio."""
    ensure_visible(user, community)
    async with pool.connection() as conn:
        rows = await coverage(conn, community, day, clock.now())
    return [{"route_id": c.route_id, "route": c.route, "day": c.day, "expected": c.expected, "covered": c.covered,
             "ratio": c.ratio, "missed": c.missed} for c in rows]
