"""A community's day calendar in PostgreSQL: its own days (``community_calendar_days``, migration
650) on top of the statutory ones, in its time zone (``communities.timezone``).

Why only the community's own days are stored: the statutory holidays and make-up workdays come
from the ``holidays`` library (:mod:`cloud.analytics.daycalendar`), which follows the State
Council's yearly notice; a copy in the database would go stale the first year nobody updated it.
What a community knows and the library cannot — the estate closes for a local festival, or its
residents do not leave at the Spring Festival — is a row here, written by an admin through
``/api/v1/analytics/communities/{community}/calendar`` with an ``admin_audit`` row in the same
transaction. The analytics jobs read it (:func:`load_calendar`) before every train and score.

The API's schemas are these models (one model per concept: the API answer is the view).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any, Literal
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field

from cloud.analytics.daycalendar import DEFAULT_ZONE, DayCalendar, DayType, calendar_of, names
from cloud.db import audit

log = logging.getLogger(__name__)


class OwnDayIn(BaseModel):
    """A community's own day: ``holiday`` (closed: the occupancy channels do not judge it) or
    ``workday`` (a statutory holiday this community does not take: judged as an ordinary day)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["holiday", "workday"]
    note: str = Field("", max_length=200, description="why (shown to the community's staff)")


class CalendarDay(BaseModel):
    """One day that is not an ordinary day of the week, or a statutory day taken back."""

    day: dt.date
    type: Literal["holiday", "makeup", "ordinary"]
    """``holiday``: the building empties; ``makeup``: a weekend day worked (调休); ``ordinary``: a
    statutory holiday the community took back."""
    source: Literal["statutory", "community"]
    name_zh: str = ""
    name_en: str = ""
    note: str = ""


class CalendarView(BaseModel):
    """A community's calendar of one year as the analytics read it."""

    community: str
    zone: str
    year: int
    days: list[CalendarDay]


_TYPES: dict[DayType, Literal["holiday", "makeup", "ordinary"]] = {
    DayType.holiday: "holiday", DayType.makeup: "makeup", DayType.ordinary: "ordinary"}


async def zone_of(conn: AsyncConnection[Any], community: str) -> str | None:
    """The community's time zone; None when there is no such community. A stored zone this
    machine does not know (the registry checks it on write; a zone database can still lose one)
    reads as the default, logged, so one community's row cannot stop scoring or the page."""
    cur = await conn.execute("SELECT timezone FROM communities WHERE code = %s", (community,))
    row = await cur.fetchone()
    if row is None:
        return None
    zone = str(row[0] or DEFAULT_ZONE)
    try:
        ZoneInfo(zone)
    except (KeyError, ValueError):  # ZoneInfoNotFoundError is a KeyError
        log.warning("community %s: unknown time zone %r, its calendar uses %s", community, zone, DEFAULT_ZONE)
        return DEFAULT_ZONE
    return zone


async def _own(conn: AsyncConnection[Any], community: str) -> list[tuple[dt.date, str, str]]:
    cur = await conn.execute("SELECT day, kind, note FROM community_calendar_days WHERE community = %s ORDER BY day",
                             (community,))
    return [(r[0], str(r[1]), str(r[2])) for r in await cur.fetchall()]


async def load_calendar(conn: AsyncConnection[Any], community: str) -> DayCalendar:
    """What the analytics score a community's hours with (its zone; the default for an unknown one)."""
    zone = await zone_of(conn, community)
    return calendar_of(zone, [(day, kind) for day, kind, _ in await _own(conn, community)])


async def view(conn: AsyncConnection[Any], community: str, zone: str, year: int) -> CalendarView:
    own = await _own(conn, community)
    calendar = calendar_of(zone, [(day, kind) for day, kind, _ in own])
    notes = {day: note for day, _, note in own}
    named = names(year)
    days = [CalendarDay(day=day, type=_TYPES[kind], source=source, name_zh=named.get(day, ("", ""))[0],
                        name_en=named.get(day, ("", ""))[1], note=notes.get(day, ""))
            for day, kind, source in calendar.days(year)]
    return CalendarView(community=community, zone=zone, year=year, days=days)


async def save_day(conn: AsyncConnection[Any], community: str, day: dt.date, body: OwnDayIn, *, actor: str,
                   now: dt.datetime) -> None:
    """Set the community's own day (in the caller's transaction, audited)."""
    await conn.execute(
        "INSERT INTO community_calendar_days (community, day, kind, note, updated_at, updated_by) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (community, day) DO UPDATE SET kind = excluded.kind, "
        "note = excluded.note, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        (community, day, body.kind, body.note, now, actor[:100]))
    await audit.record(conn, at=now, actor=actor, action="calendar.day_set", community=community,
                       target=f"calendar {community} {day.isoformat()}",
                       detail={"day": day.isoformat(), "kind": body.kind, "note": body.note})


async def delete_day(conn: AsyncConnection[Any], community: str, day: dt.date, *, actor: str,
                     now: dt.datetime) -> bool:
    """Back to the statutory calendar for that day; False when the community had no own day there."""
    cur = await conn.execute("DELETE FROM community_calendar_days WHERE community = %s AND day = %s RETURNING day",
                             (community, day))
    if await cur.fetchone() is None:
        return False
    await audit.record(conn, at=now, actor=actor, action="calendar.day_removed", community=community,
                       target=f"calendar {community} {day.isoformat()}", detail={"day": day.isoformat()})
    return True
