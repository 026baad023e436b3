"""Fleet overview data: every device the user may see with its state, per community/building.

A device's state is derived, in this order of precedence:

* ``alarming`` — it has an active, current alarm;
* ``maintenance`` — a work order for it is open (not yet resolved);
* ``offline`` — its gateway reports offline, or no reading arrived within ``ONLINE_WINDOW``;
* ``online`` — otherwise; ``unknown`` when it never sent a reading.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.auth.users import User, scope_params

ONLINE_WINDOW = dt.timedelta(minutes=15)
STATES = ("online", "alarming", "maintenance", "offline", "unknown")
OPEN_WO_STATES = ("new", "assigned", "accepted", "on_the_way", "on_site", "on_hold", "rejected")
KINDS = ("elevator", "pump", "gate", "meter", "call_button")


@dataclass(slots=True)
class DeviceRow:
    id: int
    code: str
    name: str
    kind: str
    community: str
    community_name: str
    building: str | None
    building_name: str | None
    floor: int | None
    lat: float | None
    lon: float | None
    gateway_id: int | None
    gateway: str | None
    last_time: dt.datetime | None
    alarms: int
    open_work_orders: int
    max_severity: str | None
    state: str = "unknown"


@dataclass(slots=True)
class FleetFilter:
    community: str | None = None
    building: str | None = None
    kind: str | None = None
    state: str | None = None
    q: str | None = None


@dataclass(slots=True)
class Marker:
    """One point of the map: a building (its devices' worst state and counts), so a map of a
    thousand devices stays readable and cheap to draw."""

    community: str
    building: str
    name: str
    lat: float
    lon: float
    devices: int = 0
    worst: str = "unknown"
    alarming: int = 0


_RANK = {"alarming": 4, "maintenance": 3, "offline": 2, "online": 1, "unknown": 0}


@dataclass(slots=True)
class Fleet:
    devices: list[DeviceRow]
    counts: dict[str, int] = field(default_factory=dict)
    communities: list[tuple[str, str]] = field(default_factory=list)
    buildings: list[tuple[str, str, str, int]] = field(default_factory=list)
    total: int = 0
    offset: int = 0
    markers: list[Marker] = field(default_factory=list)
    floor_devices: list[DeviceRow] = field(default_factory=list)


_SQL = """
WITH last AS (
    SELECT device_id, max(time) AS last_time FROM telemetry_last GROUP BY device_id
), alarming AS (
    SELECT community, device, count(*) AS n,
           max(CASE severity WHEN 'critical' THEN 4 WHEN 'major' THEN 3 WHEN 'minor' THEN 2
                             WHEN 'warning' THEN 1 ELSE 0 END) AS sev
      FROM alarms WHERE current AND active GROUP BY community, device
), maint AS (
    SELECT community, device, count(*) AS n FROM work_orders
     WHERE device IS NOT NULL AND state = ANY(%(open_states)s) GROUP BY community, device
)
SELECT d.id, d.code, d.name, d.kind, c.code AS community, c.name AS community_name,
       b.code AS building, b.name AS building_name, d.floor, coalesce(d.lat, b.lat) AS lat,
       coalesce(d.lon, b.lon) AS lon, g.id AS gateway_id, g.code AS gateway, g.online AS gateway_online,
       last.last_time, coalesce(a.n, 0) AS alarms, a.sev, coalesce(m.n, 0) AS open_work_orders
  FROM devices d
  JOIN communities c ON c.id = d.community_id
  LEFT JOIN buildings b ON b.id = d.building_id
  LEFT JOIN gateways g ON g.id = d.gateway_id
  LEFT JOIN last ON last.device_id = d.id
  LEFT JOIN alarming a ON a.community = c.code AND a.device = d.code
  LEFT JOIN maint m ON m.community = c.code AND m.device = d.code
 WHERE (%(all)s OR c.code = ANY(%(communities)s))
   AND (%(community)s::text IS NULL OR c.code = %(community)s)
   AND (%(building)s::text IS NULL OR b.code = %(building)s)
   AND (%(kind)s::text IS NULL OR d.kind = %(kind)s)
   AND (%(q)s::text IS NULL OR d.code ILIKE %(q)s OR d.name ILIKE %(q)s OR b.name ILIKE %(q)s
        OR b.code ILIKE %(q)s)
 ORDER BY c.code, b.code NULLS LAST, d.floor NULLS LAST, d.code
"""

_SEVERITIES = {4: "critical", 3: "major", 2: "minor", 1: "warning", 0: "info"}


def device_state(row: dict[str, Any], now: dt.datetime) -> str:
    if row["alarms"]:
        return "alarming"
    if row["open_work_orders"]:
        return "maintenance"
    last = row["last_time"]
    if last is None:
        return "unknown"
    if row["gateway_online"] is False or now - last > ONLINE_WINDOW:
        return "offline"
    return "online"


@dataclass(slots=True)
class _Snapshot:
    rows: list[dict[str, Any]]
    communities: list[tuple[str, str]]
    buildings: list[tuple[str, str, str, int]]
    taken: float


class SnapshotCache:
    """The fleet rows of one tenant scope, shared for ``ttl`` seconds.

    Why: a device's state changes at the pace of polling and alarms (seconds), while a control
    room has many engineers refreshing and filtering the same overview. Filtering happens in
    Python on the cached rows, so a filter change costs no query. Bounded to ``max_keys`` scopes.
    """

    def __init__(self, ttl: float = 2.0, max_keys: int = 256) -> None:
        self.ttl = ttl
        self.max_keys = max_keys
        self._items: dict[tuple[Any, ...], _Snapshot] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...], now: float) -> _Snapshot | None:
        snap = self._items.get(key)
        if snap is not None and now - snap.taken <= self.ttl:
            self.hits += 1
            return snap
        self.misses += 1
        return None

    def put(self, key: tuple[Any, ...], snap: _Snapshot) -> None:
        if len(self._items) >= self.max_keys:
            self._items.pop(next(iter(self._items)))
        self._items[key] = snap

    def clear(self) -> None:
        self._items.clear()


CACHE = SnapshotCache()


async def _snapshot(conn: AsyncConnection[Any], user: User) -> _Snapshot:
    info = conn.info  # the database is part of the key: one process may serve several (tests)
    key = (info.host, info.port, info.dbname, user.is_admin, tuple(sorted(user.communities)))
    clock = time.monotonic()
    cached = CACHE.get(key, clock)
    if cached is not None:
        return cached
    params = {**scope_params(user), "community": None, "building": None, "kind": None, "q": None,
              "open_states": list(OPEN_WO_STATES)}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(_SQL, params)
        rows = await cur.fetchall()
        await cur.execute(
            "SELECT code, name FROM communities WHERE (%(all)s OR code = ANY(%(communities)s)) ORDER BY code",
            scope_params(user))
        communities = [(r["code"], r["name"] or r["code"]) for r in await cur.fetchall()]
        await cur.execute(
            "SELECT c.code AS community, b.code, b.name, b.floors FROM buildings b JOIN communities c"
            " ON c.id = b.community_id WHERE (%(all)s OR c.code = ANY(%(communities)s)) ORDER BY c.code, b.code",
            scope_params(user))
        buildings = [(r["community"], r["code"], r["name"] or r["code"], r["floors"]) for r in await cur.fetchall()]
    snap = _Snapshot(rows, communities, buildings, clock)
    CACHE.put(key, snap)
    return snap


def _matches(r: dict[str, Any], flt: FleetFilter, needle: str | None) -> bool:
    if flt.community is not None and r["community"] != flt.community:
        return False
    if flt.building is not None and r["building"] != flt.building:
        return False
    if flt.kind is not None and r["kind"] != flt.kind:
        return False
    if needle is not None:
        hay = " ".join(str(r[k] or "") for k in ("code", "name", "building", "building_name")).casefold()
        return needle in hay
    return True


def _device(r: dict[str, Any], state: str) -> DeviceRow:
    return DeviceRow(
        id=r["id"], code=r["code"], name=r["name"], kind=r["kind"], community=r["community"],
        community_name=r["community_name"], building=r["building"], building_name=r["building_name"],
        floor=r["floor"], lat=r["lat"], lon=r["lon"], gateway_id=r["gateway_id"], gateway=r["gateway"],
        last_time=r["last_time"], alarms=r["alarms"], open_work_orders=r["open_work_orders"],
        max_severity=_SEVERITIES.get(r["sev"]) if r["sev"] is not None else None, state=state)


async def load_fleet(conn: AsyncConnection[Any], user: User, flt: FleetFilter, *,
                     limit: int = 100, offset: int = 0, now: dt.datetime) -> Fleet:
    """The devices ``user`` may see, filtered; counts per state are over every match (states at ``now``)."""
    snap = await _snapshot(conn, user)
    needle = flt.q.strip().casefold() if flt.q and flt.q.strip() else None
    counts = dict.fromkeys(STATES, 0)
    devices: list[DeviceRow] = []
    for r in snap.rows:
        if not _matches(r, flt, needle):
            continue
        state = device_state(r, now)
        counts[state] += 1
        if flt.state and state != flt.state:
            continue
        devices.append(_device(r, state))
    buildings = [b for b in snap.buildings if flt.community is None or b[0] == flt.community]
    markers: dict[tuple[str, str], Marker] = {}
    for d in devices:
        if d.lat is None or d.lon is None:
            continue
        key = (d.community, d.building or "")
        marker = markers.get(key)
        if marker is None:
            marker = markers[key] = Marker(d.community, d.building or "", d.building_name or d.building or d.code,
                                           d.lat, d.lon)
        marker.devices += 1
        marker.alarming += d.state == "alarming"
        if _RANK[d.state] > _RANK[marker.worst]:
            marker.worst = d.state
    return Fleet(devices=devices[offset:offset + limit], counts=counts, communities=snap.communities,
                 buildings=buildings, total=len(devices), offset=offset, markers=list(markers.values()),
                 floor_devices=[d for d in devices if flt.building and d.building == flt.building])


async def load_device(conn: AsyncConnection[Any], user: User, device_id: int, *,
                      now: dt.datetime) -> DeviceRow | None:
    """One device with its state, or None when it does not exist *or* belongs to another tenant."""
    sql = _SQL.replace(" ORDER BY c.code", " AND d.id = %(id)s ORDER BY c.code")
    params = {**scope_params(user), "community": None, "building": None, "kind": None, "q": None,
              "open_states": list(OPEN_WO_STATES), "id": device_id}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, params)
        r = await cur.fetchone()
    return None if r is None else _device(r, device_state(r, now))
