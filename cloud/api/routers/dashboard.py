"""``/api/v1/dashboard``: aggregate views — fleet state counts and service performance
(SLA compliance, mean time to respond / repair, ratings) for managers. Tenant-scoped."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field

from cloud.api.deps import ClockDep, PoolDep, StaffUser
from cloud.queries.fleet import FleetFilter, load_fleet
from cloud.queries.stats import PerfRow, load_performance

router = APIRouter(prefix="/api/v1/dashboard", tags=["dashboard"])
Community = Annotated[str | None, Query(max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")]


class SummaryOut(BaseModel):
    devices: int
    counts: dict[str, int] = Field(description="devices per state")


class PerfOut(BaseModel):
    key: str
    label: str
    community: str
    orders: int
    respond_in_time_ratio: float | None
    on_site_in_time_ratio: float | None
    mean_time_to_respond_s: float | None
    mean_time_to_repair_s: float | None
    rating_mean: float | None
    rated: int

    @classmethod
    def of(cls, p: PerfRow) -> PerfOut:
        return cls(key=p.key, label=p.label, community=p.community, orders=p.orders,
                   respond_in_time_ratio=_f(p.respond_ok), on_site_in_time_ratio=_f(p.on_site_ok),
                   mean_time_to_respond_s=_f(p.respond_s), mean_time_to_repair_s=_f(p.repair_s),
                   rating_mean=p.rating, rated=p.rated)


def _f(value: object) -> float | None:
    return None if value is None else float(value)  # type: ignore[arg-type]


class PerformanceOut(BaseModel):
    days: int
    total: PerfOut
    by_butler: list[PerfOut]
    by_community: list[PerfOut]
    ratings: dict[int, int] = Field(description="number of ratings per star (1-5)")


@router.get("/summary", response_model=SummaryOut, summary="Device counts per state")
async def summary(pool: PoolDep, user: StaffUser, clock: ClockDep, community: Community = None) -> SummaryOut:
    if community is not None and not user.can_see(community):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "community not found")
    async with pool.connection() as conn:
        fleet = await load_fleet(conn, user, FleetFilter(community=community), limit=1, now=clock.now())
    return SummaryOut(devices=sum(fleet.counts.values()), counts=fleet.counts)


@router.get("/performance", response_model=PerformanceOut,
            summary="SLA compliance, mean time to respond/repair per butler and community, ratings")
async def performance(pool: PoolDep, user: StaffUser, clock: ClockDep, community: Community = None,
                      days: Annotated[int, Query(ge=1, le=366)] = 30) -> PerformanceOut:
    if community is not None and not user.can_see(community):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "community not found")
    async with pool.connection() as conn:
        perf = await load_performance(conn, user, days=days, community=community, now=clock.now())
    return PerformanceOut(days=perf.days, total=PerfOut.of(perf.total),
                          by_butler=[PerfOut.of(p) for p in perf.by_butler],
                          by_community=[PerfOut.of(p) for p in perf.by_community], ratings=perf.ratings)
