"""``/api/v1/deadletter``: messages the ingest refused, with the reason and the raw payload.

Operators look here when a gateway's data does not show up: the reason code says whether the
gateway is unknown, the payload malformed, a timestamp implausible, and so on.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query

from cloud.api.deps import PoolDep
from cloud.queries import deadletters
from cloud.queries.deadletters import DeadLetterDetail, DeadLetterPage

router = APIRouter(prefix="/api/v1/deadletter", tags=["ingest"])


@router.get("", response_model=DeadLetterPage)
async def list_dead_letters(
    pool: PoolDep,
    reason: str | None = Query(None, max_length=64),
    gateway: str | None = Query(None, max_length=64),
    before_id: int | None = Query(None, ge=1, description="page backwards: ids lower than this"),
    limit: int = Query(100, ge=1, le=1000),
) -> DeadLetterPage:
    async with pool.connection() as conn:
        return await deadletters.list_dead_letters(conn, reason=reason, gateway=gateway, before_id=before_id,
                                                   limit=limit)


@router.get("/{dead_letter_id}", response_model=DeadLetterDetail)
async def get_dead_letter(pool: PoolDep, dead_letter_id: int) -> DeadLetterDetail:
    async with pool.connection() as conn:
        found = await deadletters.get_dead_letter(conn, dead_letter_id)
    if found is None:
        raise HTTPException(404, f"dead letter {dead_letter_id} not found")
    return found
