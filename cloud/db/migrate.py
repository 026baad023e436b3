"""Versioned SQL migrations, applied in order, each in its own transaction, exactly once.

Files live in ``cloud/db/migrations/`` and are named ``NNN_name.sql``; ``NNN_name.timescale.sql``
and ``NNN_name.plain.sql`` are applied after the common file of the same version when the
database's storage mode matches. The mode is decided once, on the first run, by trying
``CREATE EXTENSION timescaledb``; it is stored in ``schema_meta`` so that every later version
(and every process) agrees, and :func:`storage_mode` reports it.

Concurrency: the whole run holds a session advisory lock, so two workers starting together
apply each version once; the loser waits, then finds everything applied. Each applied version
is recorded in ``schema_migrations(version, name, checksum, applied_at)``; a changed file of an
applied version is reported (logged), never silently re-run.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import psycopg

from cloud.db.pool import connect
from cloud.runtime.context import StorageMode
from cloud.runtime.errors import MigrationError

log = logging.getLogger(__name__)

STORAGE_MODE_SQL = "SELECT value FROM schema_meta WHERE key = 'storage_mode'"
"""Where the mode decided by the first migration is kept (``schema_meta``)."""
ADVISORY_LOCK_KEY = 0x6775616E6A6961  # "guanjia"
_NAME_RE = re.compile(r"^(\d{3})_([a-z0-9_]+?)(?:\.(timescale|plain))?\.sql$")


@dataclass(slots=True)
class Migration:
    version: int
    name: str
    common: str | None = None
    variants: dict[str, str] = field(default_factory=dict)

    def sql_for(self, mode: StorageMode) -> list[str]:
        parts = [self.common] if self.common else []
        if mode in self.variants:
            parts.append(self.variants[mode])
        return parts

    def checksum(self, mode: StorageMode) -> str:
        return hashlib.sha256("\n".join(self.sql_for(mode)).encode()).hexdigest()[:16]


def default_directory() -> Path:
    return Path(str(resources.files("cloud.db") / "migrations"))


def discover(directory: Path | None = None) -> list[Migration]:
    """Read the migration files; a malformed name or a version used by two names is an error."""
    directory = directory or default_directory()
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME_RE.match(path.name)
        if match is None:
            raise MigrationError(f"{path}: migration files are named NNN_name[.timescale|.plain].sql")
        version, name, variant = int(match[1]), match[2], match[3]
        migration = found.setdefault(version, Migration(version, name))
        if migration.name != name:
            raise MigrationError(f"{path}: version {version:03d} is already used by {migration.name!r}")
        text = path.read_text(encoding="utf-8")
        if variant is None:
            migration.common = text
        else:
            migration.variants[variant] = text
    return [found[v] for v in sorted(found)]


def _bootstrap(conn: psycopg.Connection, prefer_timescale: bool) -> StorageMode:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_meta (key text PRIMARY KEY, value text NOT NULL)"
    )
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, "
        "checksum text NOT NULL, mode text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
    )
    row = conn.execute(STORAGE_MODE_SQL).fetchone()
    if row is not None:
        return _mode(row)
    mode: StorageMode = "plain"
    if prefer_timescale:
        try:
            with conn.transaction():
                conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
            mode = "timescale"
        except psycopg.Error as exc:
            log.info("TimescaleDB not available (%s); using plain PostgreSQL partitions", str(exc).strip())
    conn.execute("INSERT INTO schema_meta (key, value) VALUES ('storage_mode', %s)", (mode,))
    return mode


def migrate(url: str, *, prefer_timescale: bool = True, directory: Path | None = None) -> list[int]:
    """Apply every pending migration; return the versions applied by this call."""
    migrations = discover(directory)
    applied: list[int] = []
    with connect(url, "guanjia-migrate", autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            with conn.transaction():
                mode = _bootstrap(conn, prefer_timescale)
            done = {
                int(v): str(c)
                for v, c in conn.execute("SELECT version, checksum FROM schema_migrations").fetchall()
            }
            for migration in migrations:
                checksum = migration.checksum(mode)
                if migration.version in done:
                    if done[migration.version] != checksum:
                        log.warning("migration %03d_%s changed after it was applied (checksum %s, now %s)",
                                    migration.version, migration.name, done[migration.version], checksum)
                    continue
                try:
                    with conn.transaction():
                        for sql in migration.sql_for(mode):
                            conn.execute(sql.encode())
                        conn.execute(
                            "INSERT INTO schema_migrations (version, name, checksum, mode) VALUES (%s, %s, %s, %s)",
                            (migration.version, migration.name, checksum, mode),
                        )
                except psycopg.Error as exc:
                    raise MigrationError(
                        f"migration {migration.version:03d}_{migration.name} ({mode}) failed: {str(exc).strip()}"
                    ) from exc
                log.info("applied migration %03d_%s (%s)", migration.version, migration.name, mode)
                applied.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied


def _mode(row: tuple[Any, ...] | None) -> StorageMode:
    return "timescale" if row is not None and row[0] == "timescale" else "plain"


def storage_mode(conn: psycopg.Connection[Any]) -> StorageMode:
    """The database's storage mode (a database never migrated reads as ``plain``)."""
    return _mode(conn.execute(STORAGE_MODE_SQL).fetchone())


def schema_version(conn: psycopg.Connection[Any]) -> int:
    """The newest applied migration version (0 before the first)."""
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0]) if row is not None and row[0] is not None else 0


async def storage_mode_async(conn: psycopg.AsyncConnection[Any]) -> StorageMode:
    """:func:`storage_mode` on an async connection (the service, the ingest workers): the same
    query and the same reading of it, so every process agrees on what a missing row means."""
    cur = await conn.execute(STORAGE_MODE_SQL)
    return _mode(await cur.fetchone())
