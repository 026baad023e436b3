"""The admin audit log (``admin_audit``, migration 602): one row per administrative change.

Why here, at the bottom of the cloud: every part that changes administration writes to it — the
registry (gateway enrolment and credentials), and in time auth (users) and ops (rosters, SLA
policies) — and those parts may not import each other; the table's repository sits below them all.

A row is written in the same transaction as the change it records, so the log has no entry for a
change that was rolled back and no change without its entry. Secrets never go into ``detail``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb


@dataclass(slots=True)
class AuditRow:
    id: int
    at: dt.datetime
    actor: str
    action: str
    community: str | None
    target: str
    detail: dict[str, Any] = field(default_factory=dict)


async def record(conn: AsyncConnection[Any], *, at: dt.datetime, actor: str, action: str, target: str,
                 community: str | None = None, detail: dict[str, Any] | None = None) -> None:
    await conn.execute(
        "INSERT INTO admin_audit (at, actor, action, community, target, detail) VALUES (%s, %s, %s, %s, %s, %s)",
        (at, actor[:100], action[:64], community, target[:200], Jsonb(detail or {})))


async def entries(conn: AsyncConnection[Any], *, limit: int = 100, community: str | None = None,
                  before_id: int | None = None, action: str | None = None,
                  actor: str | None = None) -> list[AuditRow]:
    """Newest first; ``before_id`` pages back. ``action`` is an exact action or a family ending in
    a dot (``butler.`` → ``butler.created``, ``butler.updated``); ``actor`` an exact username."""
    async with conn.cursor(row_factory=class_row(AuditRow)) as cur:
        await cur.execute(
            "SELECT id, at, actor, action, community, target, detail FROM admin_audit "
            "WHERE (%(community)s::text IS NULL OR community = %(community)s) "
            "AND (%(action)s::text IS NULL OR action = %(action)s "
            "     OR (right(%(action)s, 1) = '.' AND starts_with(action, %(action)s))) "
            "AND (%(actor)s::text IS NULL OR actor = %(actor)s) "
            "AND (%(before)s::bigint IS NULL OR id < %(before)s) ORDER BY id DESC LIMIT %(limit)s",
            {"community": community, "before": before_id, "limit": limit, "action": action, "actor": actor})
        return await cur.fetchall()


async def families(conn: AsyncConnection[Any]) -> list[str]:
    """The action families present (``butler.``, ``gateway.`` …), for the page's filter."""
    cur = await conn.execute("SELECT DISTINCT split_part(action, '.', 1) || '.' FROM admin_audit ORDER BY 1")
    return [str(r[0]) for r in await cur.fetchall()]
