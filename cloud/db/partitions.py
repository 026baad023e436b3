"""Daily range partitions of ``telemetry_readings`` / ``telemetry_text`` on plain PostgreSQL.

Why daily: a day of a large estate is a few hundred million narrow rows at most — small enough
that retention is a cheap ``DROP TABLE`` and that the per-partition index fits in memory while it
is being written, large enough that a month-long chart touches 30 partitions, not 700.

Partitions are created ahead by :class:`cloud.db.maintenance.Maintenance` and, for late or
back-filled data, on demand by the ingest writer (:func:`ensure_range`) before its COPY. There is
no default partition on purpose: rows for a day nobody created would otherwise pile up in it and
make every later ``CREATE TABLE … PARTITION OF`` scan them. On TimescaleDB all of this is a no-op
(chunks are automatic).
"""

from __future__ import annotations

import datetime as dt
import logging
import re

import psycopg
from psycopg import sql

log = logging.getLogger(__name__)

PARTITIONED = ("telemetry_readings", "telemetry_text")
_LOCK_KEY = 0x67756A5F7061  # serialises DDL on the partitioned parents across workers
_NAME_RE = re.compile(r"^(telemetry_readings|telemetry_text)_p(\d{8})$")
UTC = dt.UTC


def day_of(moment: dt.datetime) -> dt.date:
    return moment.astimezone(UTC).date()


def partition_name(parent: str, day: dt.date) -> str:
    return f"{parent}_p{day:%Y%m%d}"


async def existing_days(conn: psycopg.AsyncConnection, parent: str = "telemetry_readings") -> set[dt.date]:
    cur = await conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = %s",
        (parent,),
    )
    rows = await cur.fetchall()
    days: set[dt.date] = set()
    for (name,) in rows:
        if (match := _NAME_RE.match(str(name))) is not None:
            days.add(dt.datetime.strptime(match[2], "%Y%m%d").date())
    return days


async def ensure_days(conn: psycopg.AsyncConnection, days: set[dt.date]) -> int:
    """Create the missing partitions for ``days`` (both parents); return how many were created.

    Runs in the caller's transaction and takes a transaction advisory lock, so concurrent workers
    neither race on ``CREATE TABLE`` nor deadlock on the parent's lock.
    """
    if not days:
        return 0
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    created = 0
    for parent in PARTITIONED:
        have = await existing_days(conn, parent)
        for day in sorted(days - have):
            low = dt.datetime.combine(day, dt.time(), UTC)
            await conn.execute(
                sql.SQL("CREATE TABLE IF NOT EXISTS {} PARTITION OF {} FOR VALUES FROM ({}) TO ({})").format(
                    sql.Identifier(partition_name(parent, day)), sql.Identifier(parent),
                    sql.Literal(low), sql.Literal(low + dt.timedelta(days=1)),
                )
            )
            created += 1
    if created:
        log.info("created %d telemetry partitions for %s", created, ", ".join(str(d) for d in sorted(days)))
    return created


async def ensure_ahead(conn: psycopg.AsyncConnection, now: dt.datetime, ahead_days: int, behind_days: int = 1) -> int:
    today = day_of(now)
    days = {today + dt.timedelta(days=i) for i in range(-behind_days, ahead_days + 1)}
    return await ensure_days(conn, days)


async def drop_older_than(conn: psycopg.AsyncConnection, cutoff: dt.datetime) -> list[str]:
    """Retention: drop whole partitions whose every row is older than ``cutoff``."""
    await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    dropped: list[str] = []
    for parent in PARTITIONED:
        for day in sorted(await existing_days(conn, parent)):
            if dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), UTC) <= cutoff:
                name = partition_name(parent, day)
                await conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(name)))
                dropped.append(name)
    if dropped:
        log.info("retention dropped partitions %s", ", ".join(dropped))
    return dropped
