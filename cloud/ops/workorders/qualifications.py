"""What a butler brings besides this quarter's results: years of service (from ``hired_on``) and
certifications (持证) — name, certificate number, issuer and expiry — and which of them count today.

Why "today" is the community's date from the injected clock: a certificate is valid *through* the
date printed on it, in the place it was issued, so a 特种设备作业人员证 that runs out on 30 June
still counts at 07:00 on 30 June in Shanghai (23:00 UTC on the 29th) and no longer at 00:30 on
1 July there. The star rule (:mod:`cloud.ops.workorders.performance`) and the butler's profile
(:mod:`cloud.ops.workorders.profile`) both ask this module, so the page never shows as current a
certificate the star level did not count. A certificate without an expiry date (长期有效) counts.

Migration 645 keeps them in ``butler_certifications`` (the bare names of migration 512 were moved
there, without number, issuer or date).
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from pydantic import BaseModel, ConfigDict, Field, field_validator

from cloud.ops.model.errors import NotFound

DEFAULT_ZONE = "Asia/Shanghai"


class Certification(BaseModel):
    """One certificate as an admin writes it (the API's input and part of the profile's view)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100, description="电梯安全管理员, 特种设备作业人员证, …")
    number: str = Field("", max_length=64, description="the certificate's number")
    issuer: str = Field("", max_length=100, description="who issued it (e.g. 上海市市场监督管理局)")
    valid_until: dt.date | None = Field(None, description="last day it is valid; none: no expiry (长期有效)")

    @field_validator("name", "number", "issuer", mode="before")
    @classmethod
    def _strip(cls, value: object) -> object:
        return value.strip() if isinstance(value, str) else value


class HeldCertification(Certification):
    """A certificate on the butler's record, with whether it counts on the community's today."""

    current: bool


async def local_today(conn: AsyncConnection[Any], butler_id: int, now: dt.datetime) -> tuple[str, dt.date]:
    """The butler's community code and its date at ``now`` (its time zone, else the butler's)."""
    cur = await conn.execute(
        """SELECT b.community, coalesce(c.timezone, nullif(b.timezone, ''), %s)
             FROM butlers b LEFT JOIN communities c ON c.code = b.community WHERE b.id = %s""",
        (DEFAULT_ZONE, butler_id))
    row = await cur.fetchone()
    if row is None:
        raise NotFound(f"butler {butler_id} does not exist")
    return str(row[0]), now.astimezone(ZoneInfo(str(row[1]))).date()


def years_of_service(hired_on: dt.date | None, today: dt.date) -> float:
    """Years since ``hired_on`` (0 when unknown or in the future), in 365.25-day years."""
    return max(0.0, (today - hired_on).days / 365.25) if hired_on is not None else 0.0


def is_current(certification: Certification, today: dt.date) -> bool:
    return certification.valid_until is None or certification.valid_until >= today


async def held(conn: AsyncConnection[Any], butler_id: int, today: dt.date) -> list[HeldCertification]:
    """The butler's certificates in the order they were written, each marked current or expired."""
    cur = await conn.execute(
        "SELECT name, number, issuer, valid_until FROM butler_certifications WHERE butler_id = %s ORDER BY position",
        (butler_id,))
    out = []
    for name, number, issuer, valid_until in await cur.fetchall():
        cert = Certification(name=name, number=number, issuer=issuer, valid_until=valid_until)
        out.append(HeldCertification(**cert.model_dump(), current=is_current(cert, today)))
    return out


async def count_current(conn: AsyncConnection[Any], butler_id: int, now: dt.datetime) -> int:
    """How many of the butler's certificates count toward the star level at ``now``."""
    _, today = await local_today(conn, butler_id, now)
    return sum(c.current for c in await held(conn, butler_id, today))


async def replace(conn: AsyncConnection[Any], butler_id: int, certifications: list[Certification]) -> None:
    """Store exactly ``certifications`` for the butler (in the caller's transaction)."""
    await conn.execute("DELETE FROM butler_certifications WHERE butler_id = %s", (butler_id,))
    if not certifications:
        return
    async with conn.cursor() as cur:
        await cur.executemany(
            "INSERT INTO butler_certifications (butler_id, position, name, number, issuer, valid_until) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [(butler_id, i, c.name, c.number, c.issuer, c.valid_until) for i, c in enumerate(certifications)])
