"""``/api/v1/admin/communities`` and ``/api/v1/admin/buildings``: the estate, for admins.

Upserts by code (post again to change a name, a time zone, the floors); every change is a row of
the admin audit log. A building of a community that does not exist is **404**.
"""

from __future__ import annotations

import zoneinfo
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel, Field, field_validator

from cloud.api.deps import AdminUser, ClockDep, PoolDep
from cloud.registry.admin import BuildingRow, list_buildings, list_communities, upsert_building, upsert_community

router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

CODE = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


class CommunityIn(BaseModel):
    code: str = Field(pattern=CODE)
    name: str = Field("", max_length=100)
    timezone: str = Field("Asia/Shanghai", max_length=64, description="IANA zone; times on pages are shown in it")

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)") from exc
        return value


class CommunityOut(BaseModel):
    code: str
    name: str
    timezone: str
    buildings: int
    gateways: int
    devices: int


class BuildingIn(BaseModel):
    community: str = Field(pattern=CODE)
    code: str = Field(pattern=CODE)
    name: str = Field("", max_length=100)
    floors: int = Field(1, ge=1, le=200)
    basement_floors: int = Field(0, ge=0, le=20)
    lat: float | None = Field(None, ge=-90, le=90)
    lon: float | None = Field(None, ge=-180, le=180)


class BuildingOut(BaseModel):
    community: str
    code: str
    name: str
    floors: int
    basement_floors: int
    lat: float | None
    lon: float | None
    created: bool | None = None


@router.get("/communities", response_model=list[CommunityOut], summary="Every community with its counts")
async def get_communities(pool: PoolDep, user: AdminUser) -> list[CommunityOut]:
    async with pool.connection() as conn:
        rows = await list_communities(conn)
    return [CommunityOut(code=r.code, name=r.name, timezone=r.timezone, buildings=r.buildings, gateways=r.gateways,
                         devices=r.devices) for r in rows]


@router.post("/communities", response_model=CommunityOut, summary="Create or update a community")
async def post_community(body: CommunityIn, pool: PoolDep, user: AdminUser, clock: ClockDep) -> CommunityOut:
    async with pool.connection() as conn:
        await upsert_community(conn, code=body.code, name=body.name or body.code, timezone=body.timezone,
                               actor=user.username, now=clock.now())
        rows = [r for r in await list_communities(conn) if r.code == body.code]
    r = rows[0]
    return CommunityOut(code=r.code, name=r.name, timezone=r.timezone, buildings=r.buildings, gateways=r.gateways,
                        devices=r.devices)


@router.get("/buildings", response_model=list[BuildingOut], summary="A community's buildings")
async def get_buildings(pool: PoolDep, user: AdminUser,
                        community: Annotated[str, Query(pattern=CODE)]) -> list[BuildingOut]:
    async with pool.connection() as conn:
        rows = await list_buildings(conn, community)
    return [BuildingOut(community=r.community, code=r.code, name=r.name, floors=r.floors,
                        basement_floors=r.basement_floors, lat=r.lat, lon=r.lon) for r in rows]


@router.post("/buildings", response_model=BuildingOut, summary="Create or update a building (floors, location)")
async def post_building(body: BuildingIn, pool: PoolDep, user: AdminUser, clock: ClockDep) -> BuildingOut:
    row = BuildingRow(community=body.community, code=body.code, name=body.name or body.code, floors=body.floors,
                      basement_floors=body.basement_floors, lat=body.lat, lon=body.lon)
    async with pool.connection() as conn:
        created = await upsert_building(conn, row, actor=user.username, now=clock.now())
    if created is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, f"no community {body.community!r}")
    return BuildingOut(community=row.community, code=row.code, name=row.name, floors=row.floors,
                       basement_floors=row.basement_floors, lat=row.lat, lon=row.lon, created=created)
