"""REST for contracts of contractor companies (维保合同): list a community's contracts with the
holder's measured compliance, create one for one or more communities (company, communities, kinds
of work, SLA terms such as lift entrapment arrival within 30 min, validity; stored as one contract
per community, as routing and compliance are per community), edit its terms and validity.

A valid contract changes routing: its kinds of work go to the holder's field staff
(:mod:`cloud.ops.routing.contracts`). Contracts are the property staff's (policy table); a
contractor's users see their orders, not the contract list.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import ClockDep, PoolDep, StaffUser, ensure_visible
from cloud.api.routers.workorders import raise_http
from cloud.ops.maintenance import contracts
from cloud.ops.maintenance.views import ContractOut, contract_views
from cloud.ops.model.errors import WorkOrderError
from cloud.ops.routing.staff import ContractorView, list_contractors

router = APIRouter(prefix="/api/v1", tags=["contracts"])

Community = Annotated[str, Query(min_length=1, max_length=64)]
Skill = Literal["elevator", "water", "electrical", "access", "general"]
WorkKind = Literal["maintenance", "rescue", "repair"]
Day = Annotated[date, Field(ge=date(2000, 1, 1), le=date(2099, 12, 31))]


class TermsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    work: list[WorkKind] = Field(min_length=1, max_length=3)
    on_site_within_min: int = Field(gt=0, le=60 * 24 * 30, description="e.g. 30 for lift entrapment arrival")
    resolve_within_min: int = Field(gt=0, le=60 * 24 * 90)
    starts_on: Day
    ends_on: Day | None = None
    reference: str = Field("", max_length=64)


class ContractIn(TermsIn):
    contractor_id: int = Field(gt=0, lt=2**63)
    communities: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(min_length=1, max_length=100)
    """One contract per community with the same terms (routing and compliance are per community)."""
    skill: Skill


async def _views(pool: PoolDep, community: str, clock: ClockDep) -> list[ContractOut]:
    async with pool.connection() as conn:
        return await contract_views(conn, community, clock.now())


@router.get("/contractors")
async def list_companies(user: StaffUser, pool: PoolDep) -> list[ContractorView]:
    """The contractor companies a contract can name (the staff's view of the admin's list)."""
    async with pool.connection() as conn:
        return await list_contractors(conn)


@router.get("/contracts")
async def list_contracts(user: StaffUser, pool: PoolDep, clock: ClockDep, community: Community) -> list[ContractOut]:
    """The community's contracts, newest first, each with the holder's compliance over the last 30 days."""
    ensure_visible(user, community)
    return await _views(pool, community, clock)


@router.post("/contracts", status_code=201)
async def create_contract(body: ContractIn, user: StaffUser, pool: PoolDep, clock: ClockDep) -> list[ContractOut]:
    """The company's contract for one or more communities (all or none are created)."""
    communities = list(dict.fromkeys(body.communities))
    for community in communities:
        ensure_visible(user, community)
    created: set[int] = set()
    async with pool.connection() as conn:
        try:
            async with conn.transaction():
                for community in communities:
                    created.add(await contracts.add_contract(
                        conn, contractor_id=body.contractor_id, community=community, skill=body.skill,
                        on_site_within=timedelta(minutes=body.on_site_within_min),
                        resolve_within=timedelta(minutes=body.resolve_within_min), starts_on=body.starts_on,
                        ends_on=body.ends_on, work=body.work, reference=body.reference, now=clock.now()))
        except WorkOrderError as exc:
            raise_http(exc)
    return [c for community in communities for c in await _views(pool, community, clock) if c.id in created]


@router.put("/contracts/{contract_id}")
async def edit_contract(contract_id: Annotated[int, Path(gt=0, lt=2**63)], body: TermsIn, user: StaffUser,
                        pool: PoolDep, clock: ClockDep) -> ContractOut:
    """New terms, kinds of work or validity (ending a contract: set ``ends_on``)."""
    async with pool.connection() as conn:
        try:
            async with conn.transaction():
                current = await contracts.get_contract(conn, contract_id)
                await contracts.update_contract(
                    conn, contract_id, on_site_within=timedelta(minutes=body.on_site_within_min),
                    resolve_within=timedelta(minutes=body.resolve_within_min), starts_on=body.starts_on,
                    ends_on=body.ends_on, work=body.work, reference=body.reference)
        except WorkOrderError as exc:
            raise_http(exc)
    return next(c for c in await _views(pool, current.community, clock) if c.id == contract_id)
