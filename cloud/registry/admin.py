"""Communities and buildings from the API (admins), each change audited in the same transaction.

The same rows ``guanjia cloud`` registry commands and the demo seed write (:mod:`cloud.registry.store`
is their synchronous, CLI-side counterpart); here the API's async side. Upserts by code: posting a
community or building again updates it, so a script can describe the estate idempotently.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row

from cloud.db import audit


@dataclass(slots=True)
class CommunityRow:
    code: str
    name: str
    timezone: str
    buildings: int
    gateways: int
    devices: int


@dataclass(slots=True)
class BuildingRow:
    community: str
    code: str
    name: str
    floors: int
    basement_floors: int
    lat: float | None
    lon: float | None


async def upsert_community(conn: AsyncConnection[Any], *, code: str, name: str, timezone: str, actor: str,
                           now: dt.datetime) -> bool:
    """Create or update; ``True`` when created."""
    cur = await conn.execute(
        "INSERT INTO communities (code, name, timezone) VALUES (%s, %s, %s) ON CONFLICT (code) DO UPDATE SET "
        "name = excluded.name, timezone = excluded.timezone RETURNING (xmax = 0)", (code, name, timezone))
    row = await cur.fetchone()
    created = bool(row and row[0])
    await audit.record(conn, at=now, actor=actor, action="community.created" if created else "community.updated",
                       community=code, target=f"community {code}", detail={"name": name, "timezone": timezone})
    return created


async def upsert_building(conn: AsyncConnection[Any], building: BuildingRow, *, actor: str,
                          now: dt.datetime) -> bool | None:
    """Create or update; ``True`` when created, ``None`` when the community does not exist."""
    cur = await conn.execute(
        "INSERT INTO buildings (community_id, code, name, floors, basement_floors, lat, lon) "
        "SELECT id, %s, %s, %s, %s, %s, %s FROM communities WHERE code = %s "
        "ON CONFLICT (community_id, code) DO UPDATE SET name = excluded.name, floors = excluded.floors, "
        "basement_floors = excluded.basement_floors, lat = excluded.lat, lon = excluded.lon RETURNING (xmax = 0)",
        (building.code, building.name, building.floors, building.basement_floors, building.lat, building.lon,
         building.community))
    row = await cur.fetchone()
    if row is None:
        return None
    created = bool(row[0])
    await audit.record(conn, at=now, actor=actor, action="building.created" if created else "building.updated",
                       community=building.community, target=f"building {building.community}/{building.code}",
                       detail={"floors": building.floors, "basement_floors": building.basement_floors})
    return created


async def list_communities(conn: AsyncConnection[Any]) -> list[CommunityRow]:
    async with conn.cursor(row_factory=class_row(CommunityRow)) as cur:
        await cur.execute(
            "SELECT c.code, c.name, c.timezone, "
            "(SELECT count(*) FROM buildings b WHERE b.community_id = c.id)::int AS buildings, "
            "(SELECT count(*) FROM gateways g WHERE g.community_id = c.id)::int AS gateways, "
            "(SELECT count(*) FROM devices d WHERE d.community_id = c.id)::int AS devices "
            "FROM communities c ORDER BY c.code")
        return await cur.fetchall()


async def list_buildings(conn: AsyncConnection[Any], community: str) -> list[BuildingRow]:
    async with conn.cursor(row_factory=class_row(BuildingRow)) as cur:
        await cur.execute(
            "SELECT c.code AS community, b.code, b.name, b.floors, b.basement_floors, b.lat, b.lon "
            "FROM buildings b JOIN communities c ON c.id = b.community_id WHERE c.code = %s ORDER BY b.code",
            (community,))
        return await cur.fetchall()
