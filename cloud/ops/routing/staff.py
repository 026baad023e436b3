"""Butlers, their skills and rosters, and contractor companies with their field staff — the admin
side of the records routing reads (:mod:`cloud.ops.routing.repo`).

Why here: these rows exist for routing (skills, buildings, shifts, the escalation link), so the
writes that shape them sit next to the reads that use them, and one set of checks (skills, time
zone, messenger URLs, shifts) guards both the admin API and the admin pages. The models below are
the API's schemas *and* the pages' view (one model per concept). Every write records an
``admin_audit`` row in the caller's transaction; the command line (``guanjia cloud wo
butler-add``) calls :func:`create_butler` too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from psycopg import AsyncConnection
from psycopg.rows import class_row
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from cloud.db import audit
from cloud.db.rows import fetch_one
from cloud.ops.model.errors import InvalidRequest, found
from cloud.ops.model.policy import Skill
from cloud.ops.notify.channels import normalise_channels
from cloud.ops.routing.roster import zone

CODE = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
Kind = Literal["full_time", "volunteer"]
TeamRole = Literal["butler", "team_lead", "manager"]


class ShiftSpec(BaseModel):
    """One weekly shift in the butler's time zone; an end at or before the start runs past
    midnight (``00:00``–``00:00`` is the whole day)."""

    model_config = ConfigDict(extra="forbid")

    weekday: int = Field(ge=0, le=6, description="0 = Monday")
    starts: dt.time
    ends: dt.time

    @field_validator("starts", "ends")
    @classmethod
    def _minutes(cls, value: dt.time) -> dt.time:
        if value.tzinfo is not None or value.second or value.microsecond:
            raise ValueError("write a local time as HH:MM")
        return value


class ButlerFields(BaseModel):
    """What an admin sets on a butler; every field optional so a PATCH names only what changes."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=100)
    phone: str | None = Field(None, max_length=32, pattern=r"^[0-9+ -]*$")
    email: str | None = Field(None, max_length=200, pattern=r"^$|^[^@\s]+@[^@\s]+$")
    buildings: list[str] | None = Field(None, max_length=200, description="empty: every building")
    skills: list[Skill] | None = Field(None, max_length=5)
    kind: Kind | None = None
    role: TeamRole | None = None
    star_level: int | None = Field(None, ge=1, le=5)
    manager_id: int | None = Field(None, ge=1, lt=2**63, description="the next step of the escalation chain")
    timezone: str | None = Field(None, max_length=64)
    messengers: list[str] | None = Field(None, max_length=10)
    active: bool | None = None

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zone(value)
            except InvalidRequest as exc:
                raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)") from exc
        return value

    @field_validator("messengers")
    @classmethod
    def _messengers(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        try:
            return normalise_channels(value)
        except InvalidRequest as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("buildings")
    @classmethod
    def _buildings(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else sorted({b.strip() for b in value if b.strip()})

    @field_validator("skills")
    @classmethod
    def _skills(cls, value: list[Skill] | None) -> list[Skill] | None:
        return None if value is None else sorted(set(value))


class NewButler(ButlerFields):
    """A new butler: a community, a name and at least one skill; ``username`` links a web login."""

    community: str = Field(pattern=CODE)
    name: str = Field(min_length=1, max_length=100)
    skills: list[Skill] = Field(min_length=1, max_length=5)
    username: str | None = Field(None, max_length=64)
    shifts: list[ShiftSpec] = Field(default_factory=list, max_length=50)
    contractor_id: int | None = Field(None, ge=1, lt=2**63, description="field staff of a contractor company")

    @model_validator(mode="after")
    def _fields(self) -> NewButler:
        self.skills = sorted(set(self.skills))
        return self


class ButlerView(BaseModel):
    """A butler as the admin API returns it and the admin page shows it."""

    id: int
    community: str
    name: str
    phone: str
    email: str
    buildings: list[str]
    skills: list[str]
    kind: str
    role: str
    star_level: int
    manager_id: int | None
    timezone: str
    messengers: list[str]
    active: bool
    username: str | None
    contractor_id: int | None
    contractor: str | None
    shifts: list[ShiftSpec]


class ContractorIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    skills: list[Skill] = Field(default_factory=list, max_length=5)


class ContractorView(BaseModel):
    id: int
    name: str
    skills: list[str]
    staff: int


_COLUMNS = ("name", "phone", "email", "buildings", "skills", "kind", "role", "star_level", "manager_id", "timezone",
            "messengers", "active")

_VIEW_SQL = """
SELECT b.id, b.community, b.name, b.phone, b.email, b.buildings, b.skills, b.kind, b.role, b.star_level::int,
       b.manager_id, b.timezone, b.messengers, b.active, u.username, b.contractor_id, c.name AS contractor,
       coalesce((SELECT json_agg(json_build_object('weekday', s.weekday, 'starts', to_char(s.starts, 'HH24:MI'),
                                                   'ends', to_char(s.ends, 'HH24:MI'))
                                 ORDER BY s.weekday, s.starts)
                 FROM butler_shifts s WHERE s.butler_id = b.id), '[]'::json) AS shifts
FROM butlers b LEFT JOIN users u ON u.id = b.user_id LEFT JOIN contractors c ON c.id = b.contractor_id
"""


async def list_butlers(conn: AsyncConnection[Any], community: str) -> list[ButlerView]:
    """The community's butlers and field staff: active first, then team role and name."""
    async with conn.cursor(row_factory=class_row(ButlerView)) as cur:
        await cur.execute(_VIEW_SQL + " WHERE b.community = %s ORDER BY NOT b.active, "
                          "CASE b.role WHEN 'manager' THEN 0 WHEN 'team_lead' THEN 1 ELSE 2 END, b.name, b.id",
                          (community,))
        return await cur.fetchall()


async def get_butler(conn: AsyncConnection[Any], butler_id: int) -> ButlerView:
    return found(await fetch_one(conn, ButlerView, _VIEW_SQL + " WHERE b.id = %s", (butler_id,)),
                 f"butler {butler_id} does not exist")


async def _check_manager(conn: AsyncConnection[Any], community: str, manager_id: int | None,
                         butler_id: int | None = None) -> None:
    if manager_id is None:
        return
    if manager_id == butler_id:
        raise InvalidRequest("manager_id: a butler cannot escalate to themselves")
    cur = await conn.execute("SELECT community FROM butlers WHERE id = %s", (manager_id,))
    row = await cur.fetchone()
    if row is None or row[0] != community:
        raise InvalidRequest(f"manager_id: no butler {manager_id} in community {community}")


async def _check_buildings(conn: AsyncConnection[Any], community: str, buildings: list[str] | None) -> None:
    if not buildings:
        return
    cur = await conn.execute("SELECT b.code FROM buildings b JOIN communities c ON c.id = b.community_id "
                             "WHERE c.code = %s AND b.code = ANY(%s)", (community, buildings))
    known = {str(r[0]) for r in await cur.fetchall()}
    unknown = [b for b in buildings if b not in known]
    if unknown:
        raise InvalidRequest(f"buildings: no building {', '.join(map(repr, unknown))} in community {community}")


async def _user_id(conn: AsyncConnection[Any], username: str | None) -> int | None:
    if not username:
        return None
    cur = await conn.execute("SELECT id FROM users WHERE lower(username) = lower(%s)", (username,))
    row = await cur.fetchone()
    if row is None:
        raise InvalidRequest(f"username: no user {username!r} (create the login first)")
    cur = await conn.execute("SELECT 1 FROM butlers WHERE user_id = %s", (row[0],))
    if await cur.fetchone() is not None:
        raise InvalidRequest(f"username: {username!r} is already linked to a butler")
    return int(row[0])


async def community_exists(conn: AsyncConnection[Any], community: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM communities WHERE code = %s", (community,))
    return await cur.fetchone() is not None


async def _write_shifts(conn: AsyncConnection[Any], butler_id: int, shifts: list[ShiftSpec]) -> None:
    await conn.execute("DELETE FROM butler_shifts WHERE butler_id = %s", (butler_id,))
    async with conn.cursor() as cur:
        await cur.executemany("INSERT INTO butler_shifts (butler_id, weekday, starts, ends) VALUES (%s, %s, %s, %s)",
                              [(butler_id, s.weekday, s.starts, s.ends) for s in shifts])


async def create_butler(conn: AsyncConnection[Any], new: NewButler, *, actor: str, now: dt.datetime) -> ButlerView:
    """Insert a butler (with roster, login link and contractor) in the caller's transaction."""
    if not await community_exists(conn, new.community):
        raise InvalidRequest(f"community: no community {new.community!r}")
    await _check_manager(conn, new.community, new.manager_id)
    await _check_buildings(conn, new.community, new.buildings)
    user_id = await _user_id(conn, new.username)
    if new.contractor_id is not None:
        cur = await conn.execute("SELECT 1 FROM contractors WHERE id = %s", (new.contractor_id,))
        if await cur.fetchone() is None:
            raise InvalidRequest(f"contractor_id: no contractor {new.contractor_id}")
    values = {c: getattr(new, c) for c in _COLUMNS if getattr(new, c) is not None}
    values |= {"community": new.community, "user_id": user_id, "contractor_id": new.contractor_id}
    cur = await conn.execute(
        f"INSERT INTO butlers ({', '.join(values)}) VALUES ({', '.join(['%s'] * len(values))}) RETURNING id",
        list(values.values()))
    row = await cur.fetchone()
    assert row is not None
    butler_id = int(row[0])
    await _write_shifts(conn, butler_id, new.shifts)
    if user_id is not None and new.contractor_id is not None:
        await conn.execute("UPDATE users SET contractor_id = %s WHERE id = %s", (new.contractor_id, user_id))
    await audit.record(conn, at=now, actor=actor, action="butler.created", community=new.community,
                       target=f"butler {butler_id} {new.name}",
                       detail={"skills": new.skills, "role": new.role or "butler", "shifts": len(new.shifts),
                               "contractor_id": new.contractor_id})
    return await get_butler(conn, butler_id)


async def update_butler(conn: AsyncConnection[Any], butler_id: int, fields: ButlerFields, *, actor: str,
                        now: dt.datetime) -> ButlerView:
    """Change the named fields (skills, role, star level, active, …), audited."""
    before = await get_butler(conn, butler_id)
    changes = {c: getattr(fields, c) for c in fields.model_fields_set & set(_COLUMNS)}
    if "manager_id" in changes:
        await _check_manager(conn, before.community, changes["manager_id"], butler_id)
    if "buildings" in changes:
        await _check_buildings(conn, before.community, changes["buildings"])
    changes = {c: v for c, v in changes.items() if v is not None or c == "manager_id"}
    if changes:
        sets = ", ".join(f"{c} = %s" for c in changes)
        await conn.execute(f"UPDATE butlers SET {sets} WHERE id = %s", [*changes.values(), butler_id])
        await audit.record(conn, at=now, actor=actor, action="butler.updated", community=before.community,
                           target=f"butler {butler_id} {before.name}",
                           detail={c: (v if not isinstance(v, dt.timedelta) else str(v)) for c, v in changes.items()})
    return await get_butler(conn, butler_id)


async def set_roster(conn: AsyncConnection[Any], butler_id: int, shifts: list[ShiftSpec], *, actor: str,
                     now: dt.datetime) -> ButlerView:
    """Replace the butler's weekly shifts (none: always on duty), audited."""
    before = await get_butler(conn, butler_id)
    await _write_shifts(conn, butler_id, shifts)
    await audit.record(conn, at=now, actor=actor, action="roster.updated", community=before.community,
                       target=f"butler {butler_id} {before.name}",
                       detail={"shifts": [f"{s.weekday} {s.starts:%H:%M}-{s.ends:%H:%M}" for s in shifts]})
    return await get_butler(conn, butler_id)


async def list_contractors(conn: AsyncConnection[Any]) -> list[ContractorView]:
    async with conn.cursor(row_factory=class_row(ContractorView)) as cur:
        await cur.execute("SELECT c.id, c.name, c.skills, (SELECT count(*) FROM butlers b WHERE b.contractor_id = c.id "
                          "AND b.active)::int AS staff FROM contractors c ORDER BY c.name, c.id")
        return await cur.fetchall()


async def create_contractor(conn: AsyncConnection[Any], new: ContractorIn, *, actor: str,
                            now: dt.datetime) -> ContractorView:
    cur = await conn.execute("INSERT INTO contractors (name, skills, created_at) VALUES (%s, %s, %s) RETURNING id",
                             (new.name, sorted(set(new.skills)), now))
    row = await cur.fetchone()
    assert row is not None
    await audit.record(conn, at=now, actor=actor, action="contractor.created", target=f"contractor {row[0]} {new.name}",
                       detail={"skills": new.skills})
    return ContractorView(id=int(row[0]), name=new.name, skills=sorted(set(new.skills)), staff=0)


async def community_timezone(conn: AsyncConnection[Any], community: str) -> str | None:
    """The community's IANA zone (times on its admin pages are shown in it), None when unknown."""
    cur = await conn.execute("SELECT timezone FROM communities WHERE code = %s", (community,))
    row = await cur.fetchone()
    return None if row is None else str(row[0])
