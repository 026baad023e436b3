"""The read model of inspection rounds, one for the API and the staff pages: a route with its
checkpoints (code, name, what to read), and its coverage per local day with the missed
checkpoint-slots. Pydantic models below both ``cloud.api`` and ``cloud.web`` so the two cannot
drift (the API returns them, the pages render them)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel

from cloud.ops.inspections import repo
from cloud.ops.inspections.rounds import coverage


class RouteOut(BaseModel):
    id: int
    community: str
    name: str
    every_hours: int
    grace_minutes: int
    timezone: str
    checkpoints: list[repo.Checkpoint]


class MissedOut(BaseModel):
    checkpoint: str
    name: str
    slot: str


class DayCoverageOut(BaseModel):
    day: date
    expected: int
    covered: int
    ratio: float | None
    missed: list[MissedOut]


class RouteDetailOut(BaseModel):
    route: RouteOut
    coverage: list[DayCoverageOut]
    """The last ``days`` local days, today first (closed slots only)."""


async def route_view(conn: AsyncConnection[Any], route: repo.Route) -> RouteOut:
    return RouteOut(id=route.id, community=route.community, name=route.name, every_hours=route.every_hours,
                    grace_minutes=route.grace_minutes, timezone=route.timezone,
                    checkpoints=await repo.checkpoints(conn, route.id))


async def route_detail(conn: AsyncConnection[Any], route_id: int, now: datetime, days: int = 7) -> RouteDetailOut:
    """A route with its coverage of the last ``days`` days in the community's zone, today first."""
    route = await repo.get_route(conn, route_id)
    today = now.astimezone(route.zone).date()
    per_day: list[DayCoverageOut] = []
    for back in range(days):
        day = today - timedelta(days=back)
        for c in await coverage(conn, route.community, day, now):
            if c.route_id == route_id:
                per_day.append(DayCoverageOut(day=day, expected=c.expected, covered=c.covered, ratio=c.ratio,
                                              missed=[MissedOut.model_validate(m) for m in c.missed]))
    return RouteDetailOut(route=await route_view(conn, route), coverage=per_day)
