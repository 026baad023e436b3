"""Communities, buildings and devices as the pages' pickers list them: the resident's report
form (which building, which device), the admin's user form (which community) and a gateway's
device list.

The rows are frozen dataclasses: the templates read them by attribute, and a typed row names
the columns the page relies on. Tenant scoping uses ``scope_params(user)`` like every read model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row

from cloud.auth.users import User, scope_params

REPORTABLE_KINDS = ("elevator", "gate", "pump")
"""Device kinds a resident may name in a report (the form's list); others they describe in text."""


@dataclass(frozen=True, slots=True)
class BuildingOption:
    community: str
    code: str
    name: str


@dataclass(frozen=True, slots=True)
class DeviceOption:
    community: str
    code: str
    name: str
    kind: str
    building: str | None


@dataclass(frozen=True, slots=True)
class GatewayDevice:
    id: int
    code: str
    name: str
    kind: str


async def community_codes(conn: AsyncConnection[Any]) -> list[str]:
    """Every community's code, sorted (the admin's user form; admins see all communities)."""
    cur = await conn.execute("SELECT code FROM communities ORDER BY code")
    return [r[0] for r in await cur.fetchall()]


async def buildings_of(conn: AsyncConnection[Any], user: User, limit: int = 500) -> list[BuildingOption]:
    async with conn.cursor(row_factory=class_row(BuildingOption)) as cur:
        await cur.execute(
            "SELECT c.code AS community, b.code, b.name"
            "  FROM buildings b JOIN communities c ON c.id = b.community_id"
            " WHERE (%(all)s OR c.code = ANY(%(communities)s)) ORDER BY c.code, b.code LIMIT %(limit)s",
            {**scope_params(user), "limit": limit})
        return await cur.fetchall()


async def reportable_devices(conn: AsyncConnection[Any], user: User, limit: int = 500) -> list[DeviceOption]:
    """Devices of :data:`REPORTABLE_KINDS` in the user's communities, by community, building, code."""
    async with conn.cursor(row_factory=class_row(DeviceOption)) as cur:
        await cur.execute(
            "SELECT c.code AS community, d.code, d.name, d.kind, b.code AS building FROM devices d"
            " JOIN communities c ON c.id = d.community_id LEFT JOIN buildings b ON b.id = d.building_id"
            " WHERE (%(all)s OR c.code = ANY(%(communities)s)) AND d.kind = ANY(%(kinds)s)"
            " ORDER BY c.code, b.code, d.code LIMIT %(limit)s",
            {**scope_params(user), "kinds": list(REPORTABLE_KINDS), "limit": limit})
        return await cur.fetchall()


async def gateway_devices(conn: AsyncConnection[Any], gateway_id: int, limit: int = 500) -> list[GatewayDevice]:
    """The devices behind a gateway, by code. The caller has checked the user may see the gateway."""
    async with conn.cursor(row_factory=class_row(GatewayDevice)) as cur:
        await cur.execute("SELECT id, code, name, kind FROM devices WHERE gateway_id = %s ORDER BY code LIMIT %s",
                          (gateway_id, limit))
        return await cur.fetchall()


async def building_community(conn: AsyncConnection[Any], user: User, building: str,
                             preferred: str | None) -> str | None:
    """The community of the building coded ``building`` among the user's communities (``preferred``
    first when several have that code), or None when the user has no such building."""
    cur = await conn.execute(
        "SELECT c.code FROM buildings b JOIN communities c ON c.id = b.community_id"
        " WHERE b.code = %s AND (%s OR c.code = ANY(%s)) ORDER BY c.code = %s DESC LIMIT 1",
        (building, user.is_admin, list(user.communities), preferred))
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def device_exists(conn: AsyncConnection[Any], community: str | None, device: str) -> bool:
    cur = await conn.execute(
        "SELECT 1 FROM devices d JOIN communities c ON c.id = d.community_id WHERE d.code = %s AND c.code = %s",
        (device, community))
    return await cur.fetchone() is not None
