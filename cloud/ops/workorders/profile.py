"""A butler's service profile: hire date and certifications, edited by an admin or the community's
engineer, read by the admin people page, the API and the butler's own page (one model for all).

Why beside the star rule and not in :mod:`cloud.ops.routing.staff`: these two fields exist for the
star level, and a change recomputes it in the same transaction (``performance`` sits here, above
routing), so the stars on the page never lag behind the record that explains them. Every change
writes an ``admin_audit`` row (``butler.profile_updated``) with what was there before.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field, model_validator

from cloud.db import audit
from cloud.ops.model.errors import InvalidRequest, NotFound
from cloud.ops.model.policy import StarRule
from cloud.ops.workorders import performance
from cloud.ops.workorders.qualifications import (
    DEFAULT_ZONE,
    Certification,
    HeldCertification,
    held,
    local_today,
    replace,
    years_of_service,
)

MAX_CERTIFICATIONS = 20
EARLIEST_HIRE = dt.date(1950, 1, 1)


class ProfileIn(BaseModel):
    """What an admin sets: the whole profile (PUT), so an omitted certificate is removed."""

    model_config = ConfigDict(extra="forbid")

    hired_on: dt.date | None = Field(None, description="first day of service (入职日期); none: unknown")
    certifications: list[Certification] = Field(default_factory=list, max_length=MAX_CERTIFICATIONS)

    @model_validator(mode="after")
    def _distinct(self) -> ProfileIn:
        seen: set[tuple[str, str]] = set()
        for cert in self.certifications:
            key = (cert.name, cert.number)
            if key in seen:
                raise ValueError(f"certificate {cert.name} {cert.number} is listed twice".replace("  ", " "))
            seen.add(key)
        return self


class ButlerProfile(BaseModel):
    """The profile as the API returns it and the pages show it: years of service and which
    certificates count on the community's ``today``."""

    butler_id: int
    name: str
    community: str
    star_level: int
    hired_on: dt.date | None
    years_of_service: float = Field(description="years since hired_on on the community's today, one decimal")
    today: dt.date = Field(description="the community's date the certificates were checked against")
    certifications: list[HeldCertification]
    current_certifications: int = Field(description="certificates that count toward the star level")


async def read(conn: AsyncConnection[Any], butler_id: int, now: dt.datetime) -> ButlerProfile:
    community, today = await local_today(conn, butler_id, now)
    cur = await conn.execute("SELECT name, star_level::int, hired_on FROM butlers WHERE id = %s", (butler_id,))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"butler {butler_id} does not exist")
    name, star_level, hired_on = row
    certs = await held(conn, butler_id, today)
    return ButlerProfile(butler_id=butler_id, name=name, community=community, star_level=star_level,
                         hired_on=hired_on, years_of_service=round(years_of_service(hired_on, today), 1), today=today,
                         certifications=certs, current_certifications=sum(c.current for c in certs))


async def save(conn: AsyncConnection[Any], butler_id: int, profile: ProfileIn, rule: StarRule, *, actor: str,
               now: dt.datetime) -> ButlerProfile:
    """Replace the butler's hire date and certificates, audited, and recompute the star level."""
    before = await read(conn, butler_id, now)
    if profile.hired_on is not None and profile.hired_on > before.today:
        raise InvalidRequest(f"hired_on: {profile.hired_on} is after today ({before.today}) in the community")
    if profile.hired_on is not None and profile.hired_on < EARLIEST_HIRE:
        raise InvalidRequest(f"hired_on: {profile.hired_on} is before {EARLIEST_HIRE}; check the year")
    await conn.execute("UPDATE butlers SET hired_on = %s WHERE id = %s", (profile.hired_on, butler_id))
    await replace(conn, butler_id, profile.certifications)
    stars = await performance.recompute(conn, butler_id, now, rule)
    await audit.record(conn, at=now, actor=actor, action="butler.profile_updated", community=before.community,
                       target=f"butler {butler_id} {before.name}",
                       detail={"hired_on": [_iso(before.hired_on), _iso(profile.hired_on)],
                               "certifications": [[_label(c) for c in before.certifications],
                                                  [_label(c) for c in profile.certifications]],
                               "star_level": [before.star_level, stars.star_level]})
    return await read(conn, butler_id, now)


async def refresh_expired(conn: AsyncConnection[Any], now: dt.datetime, rule: StarRule) -> int:
    """Recompute the stars of every butler with a computed star level whose certificate stopped
    counting (midnight after its ``valid_until``, in the community's zone) since that level was
    computed, or whose level is a day old and who has a hire date (years of service grow every
    day; a butler nobody rates would otherwise keep last year's figure); return how many. Called
    by the escalation ticker, so an expiry lowers the stars on the day, not at the butler's next
    rating."""
    cur = await conn.execute(
        """SELECT DISTINCT bc.butler_id FROM butler_certifications bc
             JOIN butlers b ON b.id = bc.butler_id
             JOIN butler_performance bp ON bp.butler_id = bc.butler_id
             LEFT JOIN communities c ON c.code = b.community
            WHERE bc.valid_until IS NOT NULL
              AND bp.computed_at < ((bc.valid_until + 1)::timestamp
                                    AT TIME ZONE coalesce(c.timezone, nullif(b.timezone, ''), %(zone)s))
              AND ((bc.valid_until + 1)::timestamp
                   AT TIME ZONE coalesce(c.timezone, nullif(b.timezone, ''), %(zone)s)) <= %(now)s
           UNION
           SELECT b.id FROM butlers b JOIN butler_performance bp ON bp.butler_id = b.id
            WHERE b.hired_on IS NOT NULL AND bp.computed_at <= %(now)s - interval '1 day'""",
        {"zone": DEFAULT_ZONE, "now": now})
    butlers = [int(row[0]) for row in await cur.fetchall()]
    for butler_id in butlers:
        await performance.recompute(conn, butler_id, now, rule)
    return len(butlers)


def _iso(day: dt.date | None) -> str | None:
    return None if day is None else day.isoformat()


def _label(cert: Certification) -> str:
    until = cert.valid_until.isoformat() if cert.valid_until else "-"
    return f"{cert.name} {cert.number} ({cert.issuer}, {until})"
