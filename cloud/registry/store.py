"""Registry rows: communities, buildings, gateways, devices (synchronous; CLI and admin paths).

Ids on the wire (``code``) are checked with :func:`guanjia.core.wire.valid_id` here, at the edge of the
system, so nothing unroutable is ever registered.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import psycopg

from cloud.runtime.errors import RegistryError
from guanjia.core.wire import valid_id


def _check_code(kind: str, code: str) -> None:
    if not valid_id(code):
        raise RegistryError(f"{kind} id {code!r} is invalid: 1–64 of A-Z a-z 0-9 _ . : - (no '/', '+', '#')")


def ensure_community(conn: psycopg.Connection, code: str, name: str = "") -> int:
    _check_code("community", code)
    row = conn.execute(
        "INSERT INTO communities (code, name) VALUES (%s, %s) ON CONFLICT (code) DO UPDATE SET code = excluded.code "
        "RETURNING id", (code, name or code)).fetchone()
    assert row is not None
    return int(row[0])


def community_id(conn: psycopg.Connection, code: str) -> int:
    row = conn.execute("SELECT id FROM communities WHERE code = %s", (code,)).fetchone()
    if row is None:
        raise RegistryError(f"community {code!r} is not registered")
    return int(row[0])


def add_building(conn: psycopg.Connection, community: str, code: str, *, name: str = "", floors: int = 1,
                 basement_floors: int = 0, lat: float | None = None, lon: float | None = None) -> int:
    _check_code("building", code)
    cid = community_id(conn, community)
    row = conn.execute(
        "INSERT INTO buildings (community_id, code, name, floors, basement_floors, lat, lon) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (community_id, code) DO UPDATE SET name = excluded.name, "
        "floors = excluded.floors, basement_floors = excluded.basement_floors, lat = excluded.lat, lon = excluded.lon "
        "RETURNING id", (cid, code, name or code, floors, basement_floors, lat, lon)).fetchone()
    assert row is not None
    return int(row[0])


def add_gateway(conn: psycopg.Connection, community: str, code: str, *, trusted: bool = False,
                auto_register: bool = False, broker_username: str | None = None,
                credentials_ref: str | None = None, name: str = "") -> int:
    _check_code("gateway", code)
    cid = ensure_community(conn, community)
    try:
        row = conn.execute(
            "INSERT INTO gateways (community_id, code, name, trusted, auto_register, broker_username, credentials_ref) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (cid, code, name or code, trusted, "register" if auto_register else "reject", broker_username,
             credentials_ref)).fetchone()
    except psycopg.errors.UniqueViolation as exc:
        raise RegistryError(f"gateway {community}/{code} already exists") from exc
    assert row is not None
    return int(row[0])


def add_device(conn: psycopg.Connection, community: str, code: str, *, gateway: str | None = None,
               building: str | None = None, floor: int | None = None, kind: str = "unknown",
               profile_id: str | None = None, name: str = "", lat: float | None = None,
               lon: float | None = None) -> int:
    _check_code("device", code)
    cid = community_id(conn, community)
    gid = bid = None
    if gateway is not None:
        row = conn.execute("SELECT id FROM gateways WHERE community_id = %s AND code = %s", (cid, gateway)).fetchone()
        if row is None:
            raise RegistryError(f"gateway {community}/{gateway} is not registered")
        gid = int(row[0])
    if building is not None:
        row = conn.execute("SELECT id FROM buildings WHERE community_id = %s AND code = %s", (cid, building)).fetchone()
        if row is None:
            raise RegistryError(f"building {community}/{building} is not registered")
        bid = int(row[0])
    row = conn.execute(
        "INSERT INTO devices (community_id, gateway_id, building_id, code, name, kind, profile_id, floor, lat, lon) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (community_id, code) DO UPDATE SET "
        "gateway_id = excluded.gateway_id, building_id = excluded.building_id, name = excluded.name, "
        "kind = excluded.kind, profile_id = excluded.profile_id, floor = excluded.floor, lat = excluded.lat, "
        "lon = excluded.lon RETURNING id",
        (cid, gid, bid, code, name or code, kind, profile_id, floor, lat, lon)).fetchone()
    assert row is not None
    return int(row[0])


def set_device_owner(conn: psycopg.Connection, community: str, code: str, user_id: int | None) -> None:
    """Link a device to the resident it belongs to (an elderly resident's call button), or unlink it
    (``None``); the orders its alarms open are then that resident's to follow."""
    cur = conn.execute("UPDATE devices SET owner_user_id = %s WHERE community_id = %s AND code = %s",
                       (user_id, community_id(conn, community), code))
    if cur.rowcount != 1:
        raise RegistryError(f"device {community}/{code} is not registered")


def add_devices_bulk(conn: psycopg.Connection, community: str, gateway: str, codes: list[str],
                     kind: str = "unknown") -> int:
    """Many devices of one gateway at once (simulated fleets, imports); existing ones are kept."""
    for code in codes:
        _check_code("device", code)
    cid = community_id(conn, community)
    row = conn.execute("SELECT id FROM gateways WHERE community_id = %s AND code = %s", (cid, gateway)).fetchone()
    if row is None:
        raise RegistryError(f"gateway {community}/{gateway} is not registered")
    cur = conn.execute(
        "INSERT INTO devices (community_id, gateway_id, code, kind) SELECT %s, %s, code, %s FROM unnest(%s::text[]) "
        "AS code ON CONFLICT DO NOTHING", (cid, int(row[0]), kind, codes))
    return cur.rowcount


@dataclass(frozen=True, slots=True)
class GatewayRow:
    id: int
    community: str
    code: str
    trusted: bool
    auto_register: str
    broker_username: str | None
    online: bool
    last_seen: dt.datetime | None
    devices: int
    high_water: int | None
    gaps: int


def list_gateways(conn: psycopg.Connection, community: str | None = None) -> list[GatewayRow]:
    rows = conn.execute(
        "SELECT g.id, c.code, g.code, g.trusted, g.auto_register, g.broker_username, g.online, g.last_seen, "
        "(SELECT count(*) FROM devices d WHERE d.gateway_id = g.id), s.high_water, s.gaps "
        "FROM gateways g JOIN communities c ON c.id = g.community_id "
        "LEFT JOIN gateway_sequence s ON s.gateway_id = g.id "
        "WHERE %(c)s::text IS NULL OR c.code = %(c)s ORDER BY c.code, g.code", {"c": community}).fetchall()
    return [GatewayRow(int(r[0]), r[1], r[2], bool(r[3]), r[4], r[5], bool(r[6]), r[7], int(r[8]),
                       None if r[9] is None else int(r[9]), int(r[10] or 0)) for r in rows]


def as_dict(row: GatewayRow) -> dict[str, Any]:
    return {f: getattr(row, f) for f in row.__dataclass_fields__}
