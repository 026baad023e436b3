"""Contracts of contractor companies and their measured compliance (the contract's own SLA, not
the property's priority clocks): of the orders of the contract's skill, in its community, assigned
to the company's field staff and opened in the window, how many had someone on site and were
resolved within the contract's terms. An order still open whose term has not run out by the end
of the window is not judged yet (the same rule as the manager report)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row

from cloud.ops.model.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class Compliance:
    contract_id: int
    contractor: str
    community: str
    skill: str
    on_site_within_min: float
    resolve_within_min: float
    orders: int
    on_site_ok: int
    on_site_judged: int
    resolve_ok: int
    resolve_judged: int

    @property
    def on_site_ratio(self) -> float | None:
        return round(self.on_site_ok / self.on_site_judged, 4) if self.on_site_judged else None

    @property
    def resolve_ratio(self) -> float | None:
        return round(self.resolve_ok / self.resolve_judged, 4) if self.resolve_judged else None


async def add_contract(conn: AsyncConnection[Any], *, contractor_id: int, community: str, skill: str,
                       on_site_within: timedelta, resolve_within: timedelta, starts_on: date,
                       now: datetime) -> int:
    if on_site_within <= timedelta(0) or resolve_within < on_site_within:
        raise InvalidRequest("on_site_within > 0 and resolve_within >= on_site_within / 合同时限无效")
    cur = await conn.execute(
        "INSERT INTO contractor_contracts (contractor_id, community, skill, on_site_within, resolve_within, starts_on,"
        " created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (contractor_id, community, skill, on_site_within, resolve_within, starts_on, now))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def compliance(conn: AsyncConnection[Any], community: str, start: datetime, end: datetime) -> list[Compliance]:
    async with conn.cursor(row_factory=class_row(Compliance)) as cur:
        await cur.execute(
            """SELECT k.id AS contract_id, c.name AS contractor, k.community, k.skill,
                      extract(epoch FROM k.on_site_within) / 60 AS on_site_within_min,
                      extract(epoch FROM k.resolve_within) / 60 AS resolve_within_min,
                      count(w.id)::int AS orders,
                      count(w.id) FILTER (WHERE w.on_site_at < %(end)s
                                            AND w.on_site_at <= w.created_at + k.on_site_within)::int AS on_site_ok,
                      count(w.id) FILTER (WHERE w.on_site_at < %(end)s
                                            OR w.created_at + k.on_site_within < %(end)s)::int AS on_site_judged,
                      count(w.id) FILTER (WHERE w.resolved_at < %(end)s
                                            AND w.resolved_at <= w.created_at + k.resolve_within)::int AS resolve_ok,
                      count(w.id) FILTER (WHERE w.resolved_at < %(end)s
                                            OR w.created_at + k.resolve_within < %(end)s)::int AS resolve_judged
                 FROM contractor_contracts k
                 JOIN contractors c ON c.id = k.contractor_id
                 LEFT JOIN work_orders w ON w.community = k.community AND w.skill = k.skill
                      AND w.created_at >= %(start)s AND w.created_at < %(end)s
                      AND w.assignee_id IN (SELECT b.id FROM butlers b WHERE b.contractor_id = k.contractor_id)
                WHERE k.community = %(c)s
                GROUP BY k.id, c.name ORDER BY k.id""", {"c": community, "start": start, "end": end})
        return await cur.fetchall()
