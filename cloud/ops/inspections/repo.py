"""Routes, checkpoints and scans against the database (SQL here, typed rows out)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import class_row

from cloud.db.rows import fetch_one
from cloud.ops.model.errors import InvalidRequest, NotFound, found


@dataclass(frozen=True, slots=True)
class Route:
    id: int
    community: str
    name: str
    every_hours: int
    grace_minutes: int
    created_at: datetime
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Checkpoint:
    id: int
    route_id: int
    code: str
    name: str
    building: str | None
    device: str | None
    position: int
    reading_unit: str


@dataclass(frozen=True, slots=True)
class NewCheckpoint:
    name: str
    building: str | None = None
    device: str | None = None
    reading_unit: str = ""


_ROUTE_SELECT = """SELECT r.id, r.community, r.name, r.every_hours, r.grace_minutes, r.created_at,
       coalesce(c.timezone, 'Asia/Shanghai') AS timezone
  FROM inspection_routes r LEFT JOIN communities c ON c.code = r.community"""


def new_code() -> str:
    """A short code printed under the QR code (typed when the camera cannot read it). Random, not
    sequential, so a code cannot be guessed from its neighbour's without walking there."""
    return "XJ-" + secrets.token_hex(3).upper()


async def create_route(conn: AsyncConnection[Any], *, community: str, name: str, every_hours: int,
                       grace_minutes: int, checkpoints: list[NewCheckpoint], now: datetime) -> Route:
    if every_hours < 1 or every_hours > 24 or 24 % every_hours:
        raise InvalidRequest("every_hours: must divide 24 (1, 2, 3, 4, 6, 8, 12, 24) / 巡检间隔须整除 24 小时")
    if not checkpoints:
        raise InvalidRequest("checkpoints: a route needs at least one checkpoint / 至少一个巡检点")
    cur = await conn.execute("SELECT 1 FROM communities WHERE code = %s", (community,))
    if await cur.fetchone() is None:
        raise InvalidRequest(f"community: {community} is not registered / 小区不存在")
    cur = await conn.execute(
        "INSERT INTO inspection_routes (community, name, every_hours, grace_minutes, created_at) "
        "VALUES (%s, %s, %s, %s, %s) RETURNING id", (community, name, every_hours, grace_minutes, now))
    row = await cur.fetchone()
    assert row is not None
    await _insert_checkpoints(conn, int(row[0]), checkpoints, 0)
    return await get_route(conn, int(row[0]))


async def _insert_checkpoints(conn: AsyncConnection[Any], route_id: int, checkpoints: list[NewCheckpoint],
                              first: int) -> None:
    for position, cp in enumerate(checkpoints, start=first):
        await conn.execute(
            "INSERT INTO inspection_checkpoints (route_id, code, name, building, device, position, reading_unit) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (route_id, new_code(), cp.name, cp.building, cp.device, position, cp.reading_unit))


async def update_route(conn: AsyncConnection[Any], route_id: int, *, name: str, every_hours: int,
                       grace_minutes: int, add: list[NewCheckpoint], active: bool = True) -> Route:
    """Rename, change the frequency or grace, append checkpoints, or retire a route. Existing
    checkpoints keep their codes (printed QR sheets stay valid); past coverage is recomputed from
    the scans, so a changed frequency applies to the days it was in force only going forward."""
    if every_hours < 1 or every_hours > 24 or 24 % every_hours:
        raise InvalidRequest("every_hours: must divide 24 (1, 2, 3, 4, 6, 8, 12, 24) / 巡检间隔须整除 24 小时")
    await get_route(conn, route_id)
    await conn.execute("UPDATE inspection_routes SET name = %s, every_hours = %s, grace_minutes = %s, active = %s"
                       " WHERE id = %s", (name, every_hours, grace_minutes, active, route_id))
    cur = await conn.execute("SELECT coalesce(max(position) + 1, 0) FROM inspection_checkpoints WHERE route_id = %s",
                             (route_id,))
    first = int((await cur.fetchone() or (0,))[0])
    await _insert_checkpoints(conn, route_id, add, first)
    return await get_route(conn, route_id)


async def get_route(conn: AsyncConnection[Any], route_id: int) -> Route:
    return found(await fetch_one(conn, Route, f"{_ROUTE_SELECT} WHERE r.id = %s", (route_id,)),
                 f"inspection route {route_id} does not exist")


async def routes(conn: AsyncConnection[Any], community: str | None = None) -> list[Route]:
    async with conn.cursor(row_factory=class_row(Route)) as cur:
        await cur.execute(f"{_ROUTE_SELECT} WHERE r.active AND (%s::text IS NULL OR r.community = %s) ORDER BY r.id",
                          (community, community))
        return await cur.fetchall()


async def checkpoints(conn: AsyncConnection[Any], route_id: int) -> list[Checkpoint]:
    async with conn.cursor(row_factory=class_row(Checkpoint)) as cur:
        await cur.execute("SELECT id, route_id, code, name, building, device, position, reading_unit "
                          "FROM inspection_checkpoints WHERE route_id = %s ORDER BY position", (route_id,))
        return await cur.fetchall()


async def checkpoint_by_code(conn: AsyncConnection[Any], community: str, code: str) -> tuple[Route, Checkpoint]:
    """The checkpoint of ``code`` in ``community`` (another community's code is not found)."""
    async with conn.cursor(row_factory=class_row(Checkpoint)) as cur:
        await cur.execute(
            """SELECT p.id, p.route_id, p.code, p.name, p.building, p.device, p.position, p.reading_unit
                 FROM inspection_checkpoints p JOIN inspection_routes r ON r.id = p.route_id
                WHERE p.code = %s AND r.community = %s AND r.active""", (code.strip().upper(), community))
        cp = await cur.fetchone()
    if cp is None:
        raise NotFound(f"no checkpoint {code!r} in {community} / 本小区没有该巡检点")
    return await get_route(conn, cp.route_id), cp


async def insert_scan(conn: AsyncConnection[Any], checkpoint_id: int, actor: str, butler_id: int | None,
                      at: datetime, method: str, reading: float | None, photo: str | None, note: str) -> int:
    cur = await conn.execute(
        "INSERT INTO inspection_scans (checkpoint_id, actor, butler_id, at, method, reading, photo, note) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (checkpoint_id, actor, butler_id, at, method, reading, photo, note))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def link_work_order(conn: AsyncConnection[Any], scan_id: int, wo_id: int) -> None:
    await conn.execute("UPDATE inspection_scans SET work_order_id = %s WHERE id = %s", (wo_id, scan_id))


async def scanned_between(conn: AsyncConnection[Any], route_id: int, start: datetime,
                          end: datetime) -> dict[int, list[datetime]]:
    """Scan times per checkpoint of the route in [start, end)."""
    cur = await conn.execute(
        """SELECT s.checkpoint_id, s.at FROM inspection_scans s JOIN inspection_checkpoints p ON p.id = s.checkpoint_id
            WHERE p.route_id = %s AND s.at >= %s AND s.at < %s ORDER BY s.at""", (route_id, start, end))
    out: dict[int, list[datetime]] = {}
    for checkpoint_id, at in await cur.fetchall():
        out.setdefault(int(checkpoint_id), []).append(at)
    return out


async def active_alarm_devices(conn: AsyncConnection[Any], rule: str) -> set[tuple[str, str]]:
    cur = await conn.execute("SELECT community, device FROM alarms WHERE rule = %s AND current AND active", (rule,))
    return {(c, d) for c, d in await cur.fetchall()}
