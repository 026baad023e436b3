"""Edge configuration: versions per gateway and staged rollouts (admins and engineers).

* ``POST /api/v1/gateways/{gateway_id}/config`` — store a whole bundle (``devices.yaml``,
  ``profiles/*.yaml``, ``rules/*.yaml``) as a version of the gateway; not pushed.
* ``GET /api/v1/gateways/{gateway_id}/config`` — its versions and what it reports it runs.
* ``POST /api/v1/config-rollouts`` — a change (files to put, names to remove) for some gateways,
  laid over each one's current version, pushed in stages (canary → percent → all).
* ``GET /api/v1/config-rollouts[/{rollout_id}]``, ``POST …/{rollout_id}/resume|abort``.

A bundle that does not pass the edge's validators is **422** ``invalid_config`` with every
problem as ``{gateway, file, line, field, message}`` (the same lines ``guanjia edge check``
prints). A process built without the edge's validators answers **503** (after the caller and
the body were checked: the authorization matrix sees the same answers everywhere). The logic is
in :mod:`cloud.ops.fleet.rollout`; SQL in :mod:`cloud.ops.fleet.configs`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request, status
from pydantic import BaseModel, Field

from cloud.api.deps import ClockDep, PoolDep, StaffUser
from cloud.auth.users import User
from cloud.http.deps import get_edge_config
from cloud.ops.fleet import configs, rollout
from cloud.ops.fleet.configs import ConfigStateRow, GatewayRef, RolloutRow, TargetRow
from guanjia.core.wire_config import MAX_BUNDLE_FILES

router = APIRouter(prefix="/api/v1", tags=["edge config"])

FileName = Annotated[str, Field(max_length=100)]
Files = Annotated[dict[FileName, Annotated[str, Field(max_length=512 * 1024)]],
                  Field(max_length=MAX_BUNDLE_FILES, description="file name → text, as on the box")]


class BundleIn(BaseModel):
    files: Files
    note: str = Field("", max_length=500)


class VersionOut(BaseModel):
    version: str
    created_by: str
    created_at: dt.datetime
    note: str
    files: list[str]


class ConfigStateOut(BaseModel):
    """What the gateway last reported (``status.health.config``)."""

    state: str = Field(description="local | probation | good | rolled_back | refused")
    running: str | None
    good: str | None
    attempted: str | None
    reason: str | None
    detail: str
    reported_at: dt.datetime

    @classmethod
    def of(cls, r: ConfigStateRow | None) -> ConfigStateOut | None:
        return None if r is None else cls(state=r.state, running=r.running, good=r.good, attempted=r.attempted,
                                          reason=r.reason, detail=r.detail, reported_at=r.reported_at)


class GatewayConfigOut(BaseModel):
    gateway_id: int
    community: str
    gateway: str
    reported: ConfigStateOut | None
    versions: list[VersionOut]


class RolloutIn(BaseModel):
    gateways: list[int] = Field(min_length=1, max_length=5000, description="gateway ids, in rollout order")
    files: Files = Field(default_factory=dict)
    remove: list[FileName] = Field(default_factory=list, max_length=MAX_BUNDLE_FILES)
    canary: int = Field(1, ge=1, le=100, description="gateways in the first stage")
    percent: int = Field(50, ge=1, le=100, description="share of the gateways done after the second stage")
    probation_s: float | None = Field(None, gt=0, le=3600, description="override the gateways' probation window")
    note: str = Field("", max_length=500)


class TargetOut(BaseModel):
    gateway_id: int
    community: str
    gateway: str
    stage: int
    version: str
    state: str = Field(description="waiting | sent | applied | failed | skipped")
    reason: str | None
    detail: str
    sent_at: dt.datetime | None
    done_at: dt.datetime | None

    @classmethod
    def of(cls, t: TargetRow) -> TargetOut:
        """The row's fields this schema declares (the row's position and push id stay internal)."""
        return cls.model_validate(t, from_attributes=True)


class RolloutOut(BaseModel):
    id: int
    state: str = Field(description="running | halted | completed | aborted")
    canary: int
    percent: int
    probation_s: float | None
    note: str
    halt_reason: str
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime
    targets: list[TargetOut]

    @classmethod
    def of(cls, r: RolloutRow, targets: list[TargetRow]) -> RolloutOut:
        return cls(**asdict(r), targets=[TargetOut.of(t) for t in targets])


def _refused(refused: rollout.Refused) -> HTTPException:
    issues = [{"gateway": gw, "file": i.file, "line": i.line, "field": i.field, "message": i.message}
              for gw, found in refused.issues.items() for i in found]
    first = issues[0]
    where = f"{first['file']}:{first['line']}" if first["line"] is not None else first["file"]
    return HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, {
        "code": "invalid_config", "message": f"{len(issues)} problem(s); first: {where}: {first['message']}",
        "detail": {"issues": issues}})


async def _gateways(pool: PoolDep, user: User, ids: list[int]) -> list[GatewayRef]:
    async with pool.connection() as conn:
        found = await configs.gateway_refs(conn, ids, all_communities=user.is_admin,
                                           communities=list(user.communities))
    by_id = {g.id: g for g in found}
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"gateway not found: {missing[0]}")
    return [by_id[i] for i in dict.fromkeys(ids)]


@router.post("/gateways/{gateway_id}/config", response_model=VersionOut, status_code=status.HTTP_201_CREATED,
             summary="Store a configuration bundle as a version of the gateway (validated as the edge does)")
async def upload_config(gateway_id: int, body: BundleIn, request: Request, pool: PoolDep, user: StaffUser,
                        clock: ClockDep) -> VersionOut:
    (gateway,) = await _gateways(pool, user, [gateway_id])
    check = get_edge_config(request)
    now = clock.now()
    async with pool.connection() as conn:
        version = await rollout.upload_version(conn, check, gateway, body.files, by=user.username, at=now,
                                               note=body.note)
    if isinstance(version, rollout.Refused):
        raise _refused(version)
    return VersionOut(version=version, created_by=user.username, created_at=now, note=body.note,
                      files=sorted(body.files))


@router.get("/gateways/{gateway_id}/config", response_model=GatewayConfigOut,
            summary="The gateway's configuration versions and what it reports it runs")
async def gateway_config(gateway_id: int, pool: PoolDep, user: StaffUser) -> GatewayConfigOut:
    (gateway,) = await _gateways(pool, user, [gateway_id])
    async with pool.connection() as conn:
        rows = await configs.versions(conn, gateway_id)
        states = await configs.config_states(conn)
    return GatewayConfigOut(
        gateway_id=gateway.id, community=gateway.community, gateway=gateway.code,
        reported=ConfigStateOut.of(states.get(gateway.id)),
        versions=[VersionOut(version=v.version, created_by=v.created_by, created_at=v.created_at, note=v.note,
                             files=sorted(v.files)) for v in rows])


@router.post("/config-rollouts", response_model=RolloutOut, status_code=status.HTTP_201_CREATED,
             summary="Roll a configuration change out to gateways in stages (canary, percent, all)")
async def start_rollout(body: RolloutIn, request: Request, pool: PoolDep, user: StaffUser,
                        clock: ClockDep) -> RolloutOut:
    gateways = await _gateways(pool, user, body.gateways)
    check = get_edge_config(request)
    now = clock.now()
    async with pool.connection() as conn:
        started = await rollout.start_rollout(conn, check, gateways, body.files, body.remove, canary=body.canary,
                                              percent=body.percent, probation_s=body.probation_s,
                                              by=user.username, at=now, note=body.note)
        if isinstance(started, rollout.Refused):
            raise _refused(started)
        await conn.commit()
        return await _load(pool, user, started)


async def _load(pool: PoolDep, user: User, rollout_id: int) -> RolloutOut:
    async with pool.connection() as conn:
        found = await configs.rollouts(conn, all_communities=user.is_admin, communities=list(user.communities),
                                       rollout_id=rollout_id)
        if not found:
            raise HTTPException(status.HTTP_404_NOT_FOUND, "rollout not found")
        return RolloutOut.of(found[0], await configs.targets(conn, rollout_id))


@router.get("/config-rollouts", response_model=list[RolloutOut], summary="Configuration rollouts, newest first")
async def list_rollouts(pool: PoolDep, user: StaffUser) -> list[RolloutOut]:
    async with pool.connection() as conn:
        rows = await configs.rollouts(conn, all_communities=user.is_admin, communities=list(user.communities))
        return [RolloutOut.of(r, await configs.targets(conn, r.id)) for r in rows]


@router.get("/config-rollouts/{rollout_id}", response_model=RolloutOut, summary="One rollout and its gateways")
async def get_rollout(rollout_id: int, pool: PoolDep, user: StaffUser) -> RolloutOut:
    return await _load(pool, user, rollout_id)


Move = Callable[..., Awaitable[bool]]


async def _move(pool: PoolDep, user: User, rollout_id: int, move: Move, at: dt.datetime, conflict: str) -> RolloutOut:
    await _load(pool, user, rollout_id)  # 404 unless the caller may see it
    async with pool.connection() as conn:
        if not await move(conn, rollout_id, by=user.username, at=at):
            raise HTTPException(status.HTTP_409_CONFLICT, conflict)
    return await _load(pool, user, rollout_id)


@router.post("/config-rollouts/{rollout_id}/resume", response_model=RolloutOut,
             summary="Resume a halted rollout (its failed gateways are skipped)")
async def resume_rollout(rollout_id: int, pool: PoolDep, user: StaffUser, clock: ClockDep) -> RolloutOut:
    return await _move(pool, user, rollout_id, rollout.resume, clock.now(), "only a halted rollout can be resumed")


@router.post("/config-rollouts/{rollout_id}/abort", response_model=RolloutOut,
             summary="Abort a running or halted rollout (nothing more is sent)")
async def abort_rollout(rollout_id: int, pool: PoolDep, user: StaffUser, clock: ClockDep) -> RolloutOut:
    return await _move(pool, user, rollout_id, rollout.abort, clock.now(), "the rollout has already ended")
