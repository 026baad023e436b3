"""Demo data: the registry of a simulated community, its people and their duty rosters.

``guanjia demo`` calls these after the simulators wrote their inventory. Everything is
idempotent, so a second ``make demo`` reuses the same rows. Nothing here runs outside demo mode.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import psycopg

from cloud.registry import store

log = logging.getLogger(__name__)

# Buildings of the demo community stand around a real-looking spot in Hangzhou, so the map view
# has something to show; each device gets a small offset inside its building.
_BASE_LAT, _BASE_LON = 30.2741, 120.1551
_SKILLS = {"elevator": "elevator", "pump": "water", "meter": "electrical", "gate": "access"}


def _building_of(device_id: str) -> str:
    head = device_id.split("-", 1)[0]
    return head if head.startswith("b") else "b1"


def seed_registry(database_url: str, inventory_path: Path, community: str, gateway: str) -> int:
    """Register buildings and devices from the simulator inventory; return the device count."""
    doc: Any = json.loads(inventory_path.read_text(encoding="utf-8"))
    entries: list[dict[str, Any]] = doc["devices"] if isinstance(doc, dict) else doc
    buildings = sorted({_building_of(e["id"]) for e in entries})
    with psycopg.connect(database_url) as conn:
        store.ensure_community(conn, community, "示范小区 Demo Garden")
        for index, code in enumerate(buildings):
            store.add_building(conn, community, code, name=f"{index + 1}号楼", floors=18, basement_floors=2,
                               lat=_BASE_LAT + 0.0008 * index, lon=_BASE_LON + 0.0011 * index)
        for n, entry in enumerate(entries):
            kind = str(entry.get("kind", "unknown"))
            building = _building_of(entry["id"])
            b_index = buildings.index(building)
            floor = -1 if kind == "pump" else (0 if kind in ("gate", "meter") else None)
            store.add_device(conn, community, entry["id"], gateway=gateway, building=building, floor=floor,
                             kind=kind, profile_id=entry.get("profile"), name=entry["id"],
                             lat=_BASE_LAT + 0.0008 * b_index + 0.00002 * (n % 7),
                             lon=_BASE_LON + 0.0011 * b_index + 0.00002 * (n % 5))
        conn.commit()
    return len(entries)


_PEOPLE: list[dict[str, Any]] = [
    # username of the demo login (cloud.auth.seed) → butler record
    {"user": "butler", "name": "李管家", "phone": "13800001111", "skills": ["elevator", "water", "general"],
     "role": "butler", "star": 4},
    {"user": "butler2", "name": "张管家", "phone": "13800002222", "skills": ["electrical", "access", "general"],
     "role": "butler", "star": 3},
    {"user": None, "name": "赵组长", "phone": "13800003333", "skills": [*_SKILLS.values(), "general"],
     "role": "team_lead", "star": 5},
    {"user": None, "name": "钱经理", "phone": "13800004444", "skills": [*_SKILLS.values(), "general"],
     "role": "manager", "star": 5},
]


def seed_call_buttons(database_url: str, community: str, resident: str = "resident") -> int:
    """The demo resident (陈女士) owns the first call button of building 1: her presses open P0 orders
    she follows in her inbox. The other buttons stay unlinked (a press still opens the order)."""
    with psycopg.connect(database_url) as conn:
        row = conn.execute("SELECT id FROM users WHERE username = %s", (resident,)).fetchone()
        found = conn.execute("SELECT 1 FROM devices d JOIN communities c ON c.id = d.community_id "
                             "WHERE c.code = %s AND d.code = 'b1-call-1'", (community,)).fetchone()
        if row is None or found is None:
            return 0
        store.set_device_owner(conn, community, "b1-call-1", int(row[0]))
        conn.commit()
    return 1


def seed_butlers(database_url: str, community: str) -> None:
    """Two butlers on duty around the clock, a team lead and a manager as the escalation chain."""
    with psycopg.connect(database_url) as conn:
        ids: dict[str, int] = {}
        for person in reversed(_PEOPLE):  # manager first, so each row can point at the next step up
            user_id = None
            if person["user"]:
                row = conn.execute("SELECT id FROM users WHERE username = %s", (person["user"],)).fetchone()
                user_id = row[0] if row else None
            manager = ids.get("manager") if person["role"] == "team_lead" else ids.get("team_lead")
            if person["role"] == "manager":
                manager = None
            existing = conn.execute("SELECT id FROM butlers WHERE community = %s AND name = %s",
                                    (community, person["name"])).fetchone()
            if existing:
                butler_id = int(existing[0])
                conn.execute("UPDATE butlers SET user_id = %s, skills = %s, role = %s, manager_id = %s, active = true"
                             " WHERE id = %s", (user_id, person["skills"], person["role"], manager, butler_id))
            else:
                row = conn.execute(
                    "INSERT INTO butlers (user_id, name, phone, community, skills, role, star_level, manager_id)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
                    (user_id, person["name"], person["phone"], community, person["skills"], person["role"],
                     person["star"], manager),
                ).fetchone()
                assert row is not None
                butler_id = int(row[0])
                conn.execute("INSERT INTO butler_shifts (butler_id, weekday, starts, ends)"
                             " SELECT %s, d, '00:00', '00:00' FROM generate_series(0, 6) AS d", (butler_id,))
            ids[person["role"]] = butler_id
        conn.commit()
    log.info("demo butlers ready in %s", community)
