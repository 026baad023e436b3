"""``/api/v1/gateways``: gateway health (online, last seen, queue depth, poll latency, errors,
ingest sequence and dead letters), tenant-scoped; admins and engineers only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from cloud.api.deps import PoolDep, StaffUser
from cloud.queries.gateways import GatewayHealth, load_gateways

router = APIRouter(prefix="/api/v1/gateways", tags=["gateways"])


class GatewayOut(BaseModel):
    id: int
    code: str
    name: str
    community: str
    online: bool
    last_seen: dt.datetime | None
    devices: int
    queue_depth: float | None
    poll_latency: dict[str, Any]
    errors: int
    seq_high_water: int | None
    seq_gaps: int
    batches_received: int
    last_received_at: dt.datetime | None
    dead_letters_24h: int
    status: dict[str, Any]

    @classmethod
    def of(cls, g: GatewayHealth) -> GatewayOut:
        return cls(id=g.id, code=g.code, name=g.name, community=g.community, online=g.online, last_seen=g.last_seen,
                   devices=g.devices, queue_depth=g.queue_depth, poll_latency=g.poll_latency, errors=g.errors,
                   seq_high_water=g.high_water, seq_gaps=g.gaps, batches_received=g.received,
                   last_received_at=g.last_received_at, dead_letters_24h=g.dead_letters_24h, status=g.status)


@router.get("", response_model=list[GatewayOut], summary="Gateways of the caller's communities")
async def list_gateways(pool: PoolDep, user: StaffUser,
                        community: Annotated[str | None, Query(max_length=64)] = None) -> list[GatewayOut]:
    if community is not None and not user.can_see(community):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "community not found")
    async with pool.connection() as conn:
        return [GatewayOut.of(g) for g in await load_gateways(conn, user, community)]


@router.get("/{gateway_id}", response_model=GatewayOut, summary="One gateway")
async def get_gateway(pool: PoolDep, user: StaffUser, gateway_id: int) -> GatewayOut:
    if not -2**31 <= gateway_id < 2**31:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "gateway not found")
    async with pool.connection() as conn:
        found = await load_gateways(conn, user, gateway_id=gateway_id)
    if not found:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "gateway not found")
    return GatewayOut.of(found[0])
