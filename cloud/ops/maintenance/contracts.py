"""Contracts of contractor companies (维保合同), kept through the API and the contracts page, and
their measured compliance (the contract's own SLA, not the property's priority clocks): of the
orders of the contract's skill, in its community, assigned to the company's field staff and
opened in the window, how many had someone on site and were resolved within the contract's
terms. An order still open whose term has not run out by the end of the window is not judged yet
(the same rule as the manager report)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection, errors
from psycopg.rows import class_row
from pydantic import BaseModel, ConfigDict

from cloud.db.rows import fetch_one
from cloud.ops.model.errors import InvalidRequest, NotFound, found
from cloud.ops.routing.contracts import WORK


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


class Contract(BaseModel):
    """A contract as stored (the API's and the page's :class:`~cloud.ops.maintenance.views.ContractOut`
    adds its validity today and the measured compliance)."""

    model_config = ConfigDict(frozen=True)

    id: int
    contractor_id: int
    contractor: str
    community: str
    skill: str
    work: list[str]
    reference: str
    on_site_within_min: float
    resolve_within_min: float
    starts_on: date
    ends_on: date | None

    def valid_on(self, day: date) -> bool:
        return self.starts_on <= day and (self.ends_on is None or day <= self.ends_on)


def _check(on_site_within: timedelta, resolve_within: timedelta, work: Sequence[str], starts_on: date,
           ends_on: date | None) -> None:
    if on_site_within <= timedelta(0) or resolve_within < on_site_within:
        raise InvalidRequest("on_site_within > 0 and resolve_within >= on_site_within / 合同时限无效")
    if not work or any(w not in WORK for w in work):
        raise InvalidRequest(f"kinds of work: one or more of {', '.join(WORK)} / 工作类型无效")
    if ends_on is not None and ends_on < starts_on:
        raise InvalidRequest("ends_on must not be before starts_on / 合同结束日期早于开始日期")


async def add_contract(conn: AsyncConnection[Any], *, contractor_id: int, community: str, skill: str,
                       on_site_within: timedelta, resolve_within: timedelta, starts_on: date,
                       now: datetime, ends_on: date | None = None, work: Sequence[str] = ("maintenance",),
                       reference: str = "") -> int:
    _check(on_site_within, resolve_within, work, starts_on, ends_on)
    try:
        cur = await conn.execute(
            "INSERT INTO contractor_contracts (contractor_id, community, skill, on_site_within, resolve_within,"
            " starts_on, ends_on, work, reference, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
            " RETURNING id",
            (contractor_id, community, skill, on_site_within, resolve_within, starts_on, ends_on, sorted(set(work)),
             reference, now))
    except errors.ForeignKeyViolation as exc:
        raise NotFound(f"contractor {contractor_id} not found / 维保单位不存在") from exc
    except errors.UniqueViolation as exc:
        raise InvalidRequest("this company already has a contract for this skill from that day"
                             " / 该单位同一工种同一起始日已有合同") from exc
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def update_contract(conn: AsyncConnection[Any], contract_id: int, *, on_site_within: timedelta,
                          resolve_within: timedelta, starts_on: date, ends_on: date | None, work: Sequence[str],
                          reference: str) -> None:
    """Change a contract's terms, kinds of work or validity (company, community and skill stay)."""
    _check(on_site_within, resolve_within, work, starts_on, ends_on)
    try:
        cur = await conn.execute(
            "UPDATE contractor_contracts SET on_site_within = %s, resolve_within = %s, starts_on = %s, ends_on = %s,"
            " work = %s, reference = %s WHERE id = %s",
            (on_site_within, resolve_within, starts_on, ends_on, sorted(set(work)), reference, contract_id))
    except errors.UniqueViolation as exc:
        raise InvalidRequest("this company already has a contract for this skill from that day"
                             " / 该单位同一工种同一起始日已有合同") from exc
    if cur.rowcount == 0:
        raise NotFound(f"contract {contract_id} not found / 合同不存在")


_CONTRACT_SELECT = """SELECT k.id, k.contractor_id, c.name AS contractor, k.community, k.skill, k.work, k.reference,
       extract(epoch FROM k.on_site_within)::float / 60 AS on_site_within_min,
       extract(epoch FROM k.resolve_within)::float / 60 AS resolve_within_min, k.starts_on, k.ends_on
  FROM contractor_contracts k JOIN contractors c ON c.id = k.contractor_id"""


async def contracts(conn: AsyncConnection[Any], community: str) -> list[Contract]:
    async with conn.cursor(row_factory=class_row(Contract)) as cur:
        await cur.execute(_CONTRACT_SELECT + " WHERE k.community = %s ORDER BY k.starts_on DESC, k.id DESC",
                          (community,))
        return await cur.fetchall()


async def get_contract(conn: AsyncConnection[Any], contract_id: int) -> Contract:
    return found(await fetch_one(conn, Contract, _CONTRACT_SELECT + " WHERE k.id = %s", (contract_id,)),
                 f"contract {contract_id} not found / 合同不存在")


async def community_zone(conn: AsyncConnection[Any], community: str) -> ZoneInfo:
    cur = await conn.execute("SELECT timezone FROM communities WHERE code = %s", (community,))
    row = await cur.fetchone()
    return ZoneInfo(row[0] if row else "Asia/Shanghai")


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
