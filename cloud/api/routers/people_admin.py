"""``/api/v1/admin/butlers``, ``/api/v1/admin/contractors`` and a community's policy: the people
and rules routing and deadlines run on, for admins (engineers of the community may read, and set
a butler's service profile — hire date and certificates — in their own community).

The schemas are :mod:`cloud.ops.routing.staff`'s and :mod:`cloud.ops.policies.repo`'s (the admin
pages render the same models and post to these routes). A value the domain refuses comes back as
**422** ``invalid_request`` with ``detail`` as ``[{"loc": ["body", field], "msg": …}]`` — the shape
of a schema error — so a form shows every error next to its field. Every change is a row of the
admin audit log, written in the same transaction.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, NoReturn

from fastapi import APIRouter, HTTPException, Query, status
from psycopg import AsyncConnection

from cloud.api.deps import AdminUser, ClockDep, PolicyDep, PoolDep, StaffUser
from cloud.ops.model.errors import InvalidRequest, NotFound, WorkOrderError
from cloud.ops.notify import wording
from cloud.ops.notify.wording import WordingIn, WordingRow
from cloud.ops.policies import repo as policies
from cloud.ops.routing import staff
from cloud.ops.routing.staff import CODE, ButlerFields, ButlerView, ContractorIn, ContractorView, NewButler, ShiftSpec
from cloud.ops.workorders import profile
from cloud.ops.workorders.profile import ButlerProfile, ProfileIn

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])
_FIELD = re.compile(r"^([a-z_]+): (.+)$", re.S)


def refuse(exc: WorkOrderError) -> NoReturn:
    """The domain's refusal in the API's error shape; ``field: message`` names the field."""
    if isinstance(exc, NotFound):
        raise HTTPException(status.HTTP_404_NOT_FOUND, {"code": "not_found", "message": str(exc)}) from exc
    if not isinstance(exc, InvalidRequest):
        raise HTTPException(status.HTTP_403_FORBIDDEN, {"code": exc.code, "message": str(exc)}) from exc
    match = _FIELD.match(str(exc))
    loc = ["body", match.group(1)] if match else ["body"]
    raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, {
        "code": "invalid_request", "message": str(exc),
        "detail": [{"loc": loc, "msg": match.group(2) if match else str(exc), "type": "value_error"}]}) from exc


async def _known(conn: AsyncConnection[Any], community: str) -> None:
    if not await staff.community_exists(conn, community):
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no community {community!r}")


@router.get("/butlers", response_model=list[ButlerView], summary="A community's butlers, skills and rosters")
async def get_butlers(pool: PoolDep, user: StaffUser,
                      community: Annotated[str, Query(pattern=CODE)]) -> list[ButlerView]:
    async with pool.connection() as conn:
        return await staff.list_butlers(conn, community)


@router.post("/butlers", response_model=ButlerView, status_code=status.HTTP_201_CREATED,
             summary="Add a butler (skills, roster, escalation link, optional web login)")
async def post_butler(body: NewButler, pool: PoolDep, user: AdminUser, clock: ClockDep) -> ButlerView:
    try:
        async with pool.connection() as conn:
            return await staff.create_butler(conn, body, actor=user.username, now=clock.now())
    except WorkOrderError as exc:
        refuse(exc)


@router.patch("/butlers/{butler_id}", response_model=ButlerView, summary="Change a butler's skills, role, …")
async def patch_butler(butler_id: int, body: ButlerFields, pool: PoolDep, user: AdminUser,
                       clock: ClockDep) -> ButlerView:
    try:
        async with pool.connection() as conn:
            return await staff.update_butler(conn, butler_id, body, actor=user.username, now=clock.now())
    except WorkOrderError as exc:
        refuse(exc)


@router.put("/butlers/{butler_id}/roster", response_model=ButlerView,
            summary="Replace a butler's weekly shifts (none: always on duty)")
async def put_roster(butler_id: int, body: list[ShiftSpec], pool: PoolDep, user: AdminUser,
                     clock: ClockDep) -> ButlerView:
    if len(body) > 50:
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, "at most 50 shifts")
    try:
        async with pool.connection() as conn:
            return await staff.set_roster(conn, butler_id, body, actor=user.username, now=clock.now())
    except WorkOrderError as exc:
        refuse(exc)


@router.get("/butlers/{butler_id}/profile", response_model=ButlerProfile,
            summary="A butler's hire date, years of service and certificates (which count toward the stars today)")
async def get_profile(butler_id: int, pool: PoolDep, user: StaffUser, clock: ClockDep) -> ButlerProfile:
    try:
        async with pool.connection() as conn:
            return await profile.read(conn, butler_id, clock.now())
    except WorkOrderError as exc:
        refuse(exc)


@router.put("/butlers/{butler_id}/profile", response_model=ButlerProfile,
            summary="Set a butler's hire date and certificates (the whole list); the star level is recomputed")
async def put_profile(butler_id: int, body: ProfileIn, pool: PoolDep, user: StaffUser, base: PolicyDep,
                      clock: ClockDep) -> ButlerProfile:
    """Admins, and the engineers (managers) of the butler's own community (the policy row's
    tenancy check answers 404 for another community's butler)."""
    try:
        async with pool.connection() as conn:
            return await profile.save(conn, butler_id, body, base.stars, actor=user.username, now=clock.now())
    except WorkOrderError as exc:
        refuse(exc)


@router.get("/contractors", response_model=list[ContractorView], summary="Contractor companies")
async def get_contractors(pool: PoolDep, user: AdminUser) -> list[ContractorView]:
    async with pool.connection() as conn:
        return await staff.list_contractors(conn)


@router.post("/contractors", response_model=ContractorView, status_code=status.HTTP_201_CREATED,
             summary="Add a contractor company (its staff are butlers with contractor_id)")
async def post_contractor(body: ContractorIn, pool: PoolDep, user: AdminUser, clock: ClockDep) -> ContractorView:
    async with pool.connection() as conn:
        return await staff.create_contractor(conn, body, actor=user.username, now=clock.now())


@router.get("/communities/{community}/policy", response_model=policies.PolicyView,
            summary="The SLA clocks and notification settings in force for a community")
async def get_policy(community: str, pool: PoolDep, user: StaffUser, base: PolicyDep) -> policies.PolicyView:
    async with pool.connection() as conn:
        await _known(conn, community)
        return policies.view(base, await policies.load(conn, community))


@router.put("/communities/{community}/policy", response_model=policies.PolicyView,
            summary="Set a community's SLA clocks and notification settings (what differs from the default is kept)")
async def put_policy(community: str, body: policies.CommunityPolicy, pool: PoolDep, user: AdminUser,
                     base: PolicyDep, clock: ClockDep) -> policies.PolicyView:
    async with pool.connection() as conn:
        await _known(conn, community)
        stored = await policies.save(conn, base, community, body, actor=user.username, now=clock.now())
    return policies.view(base, stored)


@router.delete("/communities/{community}/policy", response_model=policies.PolicyView,
               summary="Back to the platform default (the YAML policy)")
async def delete_policy(community: str, pool: PoolDep, user: AdminUser, base: PolicyDep,
                        clock: ClockDep) -> policies.PolicyView:
    async with pool.connection() as conn:
        await _known(conn, community)
        await policies.reset(conn, community, actor=user.username, now=clock.now())
        return policies.view(base, await policies.load(conn, community))


@router.get("/communities/{community}/wording", response_model=list[WordingRow],
            summary="The community's own wording of notification messages, beside the shipped words")
async def get_wording(community: str, pool: PoolDep, user: StaffUser) -> list[WordingRow]:
    async with pool.connection() as conn:
        await _known(conn, community)
        return await wording.rows(conn, community)


@router.put("/communities/{community}/wording", response_model=list[WordingRow],
            summary="Reword one message for one language and channel (template null: the shipped words again)")
async def put_wording(community: str, body: WordingIn, pool: PoolDep, user: AdminUser,
                      clock: ClockDep) -> list[WordingRow]:
    async with pool.connection() as conn:
        await _known(conn, community)
        return await wording.save(conn, community, body, actor=user.username, now=clock.now())
