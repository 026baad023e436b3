"""Devices from a CSV file, all or nothing; and the same columns back out (export).

Columns (header row required, order free, names exact)::

    community,code,name,kind,profile,gateway,building,floor,lat,lon

``community``, ``code`` and ``kind`` are required; the rest may be empty. An existing device
(same community and code) is updated, a new one created.

Why all or nothing: a half-imported sheet leaves the operator guessing which rows made it. Every
row is checked first — against the registry (the community, its gateway and building exist), the
profile library (the profile exists and is of the row's kind), and the file itself (a code twice)
— and every error is listed with its **line number** in the file (the header is line 1), the
column and what would be valid. Only a file without errors is written, in one transaction.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from device_profiles.loader import builtin_profiles
from guanjia.core.wire import valid_id

COLUMNS = ("community", "code", "name", "kind", "profile", "gateway", "building", "floor", "lat", "lon")
REQUIRED = ("community", "code", "kind")
KINDS = ("elevator", "pump", "gate", "meter", "unknown")
MAX_ROWS = 20_000


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    column: str
    message: str


@dataclass(frozen=True, slots=True)
class DeviceLine:
    line: int
    community: str
    code: str
    name: str
    kind: str
    profile: str | None
    gateway: str | None
    building: str | None
    floor: int | None
    lat: float | None
    lon: float | None


@dataclass(frozen=True, slots=True)
class Registry:
    """What the rows are checked against: community code → (id, gateway codes → id, building codes → id)."""

    communities: dict[str, tuple[int, dict[str, int], dict[str, int]]]


async def load_registry(conn: AsyncConnection[Any]) -> Registry:
    communities: dict[str, tuple[int, dict[str, int], dict[str, int]]] = {}
    cur = await conn.execute("SELECT id, code FROM communities")
    for cid, code in await cur.fetchall():
        communities[code] = (cid, {}, {})
    by_id = {v[0]: v for v in communities.values()}
    cur = await conn.execute("SELECT community_id, code, id FROM gateways")
    for cid, code, gid in await cur.fetchall():
        by_id[cid][1][code] = gid
    cur = await conn.execute("SELECT community_id, code, id FROM buildings")
    for cid, code, bid in await cur.fetchall():
        by_id[cid][2][code] = bid
    return Registry(communities)


def _number(raw: str, column: str, line: int, errors: list[RowError], *, low: float, high: float,
            integer: bool = False) -> Any:
    if not raw:
        return None
    try:
        value: float = int(raw) if integer else float(raw)
    except ValueError:
        errors.append(RowError(line, column, f"{raw!r} is not {'a whole number' if integer else 'a number'}"))
        return None
    if not math.isfinite(value) or not low <= value <= high:
        errors.append(RowError(line, column, f"{raw} is outside {low:g} … {high:g}"))
        return None
    return value


def check_csv(text: str, registry: Registry, *, communities: set[str] | None = None
              ) -> tuple[list[DeviceLine], list[RowError]]:
    """Parse and check every row; ``communities``: the ones the caller may change (``None``: all)."""
    errors: list[RowError] = []
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))  # Excel writes a BOM
    header = [h.strip() for h in (reader.fieldnames or [])]
    missing = [c for c in REQUIRED if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    if missing or unknown:
        detail = "; ".join(filter(None, [f"missing {', '.join(missing)}" if missing else "",
                                         f"unknown {', '.join(unknown)}" if unknown else ""]))
        return [], [RowError(1, "header", f"{detail} (columns: {', '.join(COLUMNS)})")]
    reader.fieldnames = header
    profiles = builtin_profiles()
    rows: list[DeviceLine] = []
    seen: dict[tuple[str, str], int] = {}
    for index, raw in enumerate(reader):
        line = reader.line_num
        if index >= MAX_ROWS:
            errors.append(RowError(line, "file", f"more than {MAX_ROWS} rows; split the file"))
            break
        if None in raw:
            errors.append(RowError(line, "row", "more cells than columns"))
            continue
        cell = {k: (v or "").strip() for k, v in raw.items()}
        before = len(errors)
        for column in REQUIRED:
            if not cell.get(column):
                errors.append(RowError(line, column, "required"))
        community, code, kind = cell.get("community", ""), cell.get("code", ""), cell.get("kind", "")
        known = registry.communities.get(community)
        if community and known is None:
            errors.append(RowError(line, "community", f"no community {community!r}"))
        elif community and communities is not None and community not in communities:
            errors.append(RowError(line, "community", f"{community!r} is not one of your communities"))
        if code and not valid_id(code):
            errors.append(RowError(line, "code", f"{code!r}: letters, digits, '-', '_', '.', ':' (at most 64)"))
        if kind and kind not in KINDS:
            errors.append(RowError(line, "kind", f"{kind!r} is not one of {', '.join(KINDS)}"))
        profile = cell.get("profile") or None
        if profile is not None:
            found = profiles.get(profile)
            if found is None:
                known_ids = ", ".join(sorted(profiles))
                errors.append(RowError(line, "profile", f"no profile {profile!r} (known: {known_ids})"))
            elif kind in KINDS and found.kind != kind:
                errors.append(RowError(line, "profile", f"{profile} is a {found.kind} profile, the row says {kind}"))
        gateway, building = cell.get("gateway") or None, cell.get("building") or None
        if known is not None and gateway is not None and gateway not in known[1]:
            errors.append(RowError(line, "gateway", f"no gateway {gateway!r} in {community}"))
        if known is not None and building is not None and building not in known[2]:
            errors.append(RowError(line, "building", f"no building {building!r} in {community}"))
        floor = _number(cell.get("floor", ""), "floor", line, errors, low=-20, high=200, integer=True)
        lat = _number(cell.get("lat", ""), "lat", line, errors, low=-90, high=90)
        lon = _number(cell.get("lon", ""), "lon", line, errors, low=-180, high=180)
        if community and code:
            first = seen.setdefault((community, code), line)
            if first != line:
                errors.append(RowError(line, "code", f"{community}/{code} is already on line {first}"))
        if len(errors) == before:
            rows.append(DeviceLine(line, community, code, cell.get("name", "")[:200] or code, kind, profile, gateway,
                                   building, floor, lat, lon))
    if not rows and not errors:
        errors.append(RowError(1, "file", "no rows"))
    return rows, errors


async def write_devices(conn: AsyncConnection[Any], rows: list[DeviceLine], registry: Registry) -> tuple[int, int]:
    """Upsert checked rows (the caller's transaction); ``(created, updated)``."""
    created = updated = 0
    for r in rows:
        cid, gateways, buildings = registry.communities[r.community]
        cur = await conn.execute(
            "INSERT INTO devices (community_id, gateway_id, building_id, code, name, kind, profile_id, floor, lat, "
            "lon) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (community_id, code) DO UPDATE SET "
            "gateway_id = excluded.gateway_id, building_id = excluded.building_id, name = excluded.name, "
            "kind = excluded.kind, profile_id = excluded.profile_id, floor = excluded.floor, lat = excluded.lat, "
            "lon = excluded.lon RETURNING (xmax = 0)",
            (cid, gateways.get(r.gateway) if r.gateway else None, buildings.get(r.building) if r.building else None,
             r.code, r.name, r.kind, r.profile, r.floor, r.lat, r.lon))
        row = await cur.fetchone()
        if row is not None and row[0]:
            created += 1
        else:
            updated += 1
    return created, updated


async def export_csv(conn: AsyncConnection[Any], community: str | None) -> str:
    """Every device (of ``community``) in the import's columns, so an export imports back unchanged."""
    cur = await conn.execute(
        "SELECT c.code, d.code, d.name, d.kind, d.profile_id, g.code, b.code, d.floor, d.lat, d.lon "
        "FROM devices d JOIN communities c ON c.id = d.community_id LEFT JOIN gateways g ON g.id = d.gateway_id "
        "LEFT JOIN buildings b ON b.id = d.building_id WHERE (%(c)s::text IS NULL OR c.code = %(c)s) "
        "ORDER BY c.code, d.code", {"c": community})
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in await cur.fetchall():
        writer.writerow(["" if v is None else v for v in row])
    return out.getvalue()
