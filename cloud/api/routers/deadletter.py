"""``/api/v1/deadletter``: messages the ingest refused, with the reason and the raw payload.

Operators look here when a gateway's data does not show up: the reason code says whether the
gateway is unknown, the payload malformed, a timestamp implausible, and so on.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel

from cloud.api.deps import PoolDep

router = APIRouter(prefix="/api/v1/deadletter", tags=["ingest"])


class DeadLetterOut(BaseModel):
    id: int
    received_at: dt.datetime
    topic: str
    community: str | None
    gateway: str | None
    reason: str
    detail: str
    payload_size: int
    payload_stored: int


class DeadLetterDetail(DeadLetterOut):
    payload_base64: str
    payload_text: str | None


class DeadLetterPage(BaseModel):
    items: list[DeadLetterOut]
    counts: dict[str, int]


_COLUMNS = "id, received_at, topic, community, gateway, reason, detail, payload_size, octet_length(payload)"


def _row(row: tuple[Any, ...]) -> dict[str, Any]:
    keys = ("id", "received_at", "topic", "community", "gateway", "reason", "detail", "payload_size",
            "payload_stored")
    return dict(zip(keys, row, strict=False))


@router.get("", response_model=DeadLetterPage)
async def list_dead_letters(
    pool: PoolDep,
    reason: str | None = Query(None, max_length=64),
    gateway: str | None = Query(None, max_length=64),
    before_id: int | None = Query(None, ge=1, description="page backwards: ids lower than this"),
    limit: int = Query(100, ge=1, le=1000),
) -> DeadLetterPage:
    where: list[str] = ["true"]
    params: list[object] = []
    if reason:
        where.append("reason = %s")
        params.append(reason)
    if gateway:
        where.append("gateway = %s")
        params.append(gateway)
    if before_id:
        where.append("id < %s")
        params.append(before_id)
    async with pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT {_COLUMNS} FROM dead_letters WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s",
            (*params, limit),
        )
        items = [DeadLetterOut(**_row(r)) for r in await cur.fetchall()]
        cur = await conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY reason")
        counts = {str(r): int(n) for r, n in await cur.fetchall()}
    return DeadLetterPage(items=items, counts=counts)


@router.get("/{dead_letter_id}", response_model=DeadLetterDetail)
async def get_dead_letter(pool: PoolDep, dead_letter_id: int) -> DeadLetterDetail:
    async with pool.connection() as conn:
        cur = await conn.execute(f"SELECT {_COLUMNS}, payload FROM dead_letters WHERE id = %s", (dead_letter_id,))
        row = await cur.fetchone()
    if row is None:
        raise HTTPException(404, f"dead letter {dead_letter_id} not found")
    payload = bytes(row[-1])
    try:
        text: str | None = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return DeadLetterDetail(**_row(row[:-1]), payload_base64=base64.b64encode(payload).decode(), payload_text=text)
