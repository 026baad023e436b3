"""Dead letters (messages the ingest refused) as operators read them: ``/api/v1/deadletter``.

The rows are pydantic models because they are the API's response schema itself: the query and
the JSON cannot drift apart. ``payload_stored`` is what the table kept (the ingest truncates big
payloads), ``payload_size`` what arrived.
"""

from __future__ import annotations

import base64
import datetime as dt
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel


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


async def list_dead_letters(conn: AsyncConnection[Any], *, reason: str | None, gateway: str | None,
                            before_id: int | None, limit: int) -> DeadLetterPage:
    """Newest first, filtered, paged backwards by id; ``counts`` is per reason over the whole table
    (unfiltered), so the operator sees what else is there."""
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
    cur = await conn.execute(
        f"SELECT {_COLUMNS} FROM dead_letters WHERE {' AND '.join(where)} ORDER BY id DESC LIMIT %s",
        (*params, limit),
    )
    items = [DeadLetterOut(**_row(r)) for r in await cur.fetchall()]
    cur = await conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY reason")
    counts = {str(r): int(n) for r, n in await cur.fetchall()}
    return DeadLetterPage(items=items, counts=counts)


async def get_dead_letter(conn: AsyncConnection[Any], dead_letter_id: int) -> DeadLetterDetail | None:
    """One dead letter with its payload (base64, and as text when it is UTF-8); None when unknown."""
    cur = await conn.execute(f"SELECT {_COLUMNS}, payload FROM dead_letters WHERE id = %s", (dead_letter_id,))
    row = await cur.fetchone()
    if row is None:
        return None
    payload = bytes(row[-1])
    try:
        text: str | None = payload.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    return DeadLetterDetail(**_row(row[:-1]), payload_base64=base64.b64encode(payload).decode(), payload_text=text)
