"""What the alarm side needs to know about a device: its kind (which skill repairs it) and its
building (who owns it). Read from the registry when it knows the device, else from the event's
labels, else from the device's earlier alarms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import AsyncConnection


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    kind: str | None = None
    building: str | None = None
    floor: str | None = None
    name: str | None = None


_REGISTRY_SQL = """
SELECT d.kind, b.code, d.floor::text, d.name
FROM devices d JOIN communities c ON c.id = d.community_id LEFT JOIN buildings b ON b.id = d.building_id
WHERE c.code = %s AND d.code = %s
"""


async def device_info(conn: AsyncConnection[Any], community: str, device: str) -> DeviceInfo:
    """Best knowledge of ``device``; never raises for a missing registry (alarms still flow)."""
    try:
        async with conn.transaction():  # savepoint: a registry schema mismatch must not abort the caller
            cur = await conn.execute(_REGISTRY_SQL, (community, device))
            row = await cur.fetchone()
        if row is not None:
            return DeviceInfo(row[0], row[1], row[2], row[3])
    except psycopg.Error:
        pass
    cur = await conn.execute(
        "SELECT device_kind, building FROM alarms WHERE community = %s AND device = %s AND device_kind IS NOT NULL "
        "ORDER BY id DESC LIMIT 1",
        (community, device),
    )
    row = await cur.fetchone()
    return DeviceInfo(row[0], row[1]) if row else DeviceInfo()


async def lock_device(conn: AsyncConnection[Any], community: str, device: str) -> None:
    """Serialise, until the transaction ends, everything that may open an order for ``device``
    (its alarms and residents' reports about it)."""
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 7))", (f"{community}\x1f{device}",))
