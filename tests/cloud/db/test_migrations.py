"""Migrations apply on plain PostgreSQL, twice (idempotent), concurrently, and create partitions."""

from __future__ import annotations

import datetime as dt
import threading

import psycopg
import pytest

from cloud.db import partitions
from cloud.db.migrate import discover, migrate
from cloud.runtime.errors import MigrationError


def test_migrations_apply_twice_and_record(db_url: str) -> None:
    first = migrate(db_url)
    assert 1 in first
    assert 6 in first
    assert migrate(db_url) == []
    with psycopg.connect(db_url) as conn:
        versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()]
        mode = conn.execute("SELECT value FROM schema_meta WHERE key = 'storage_mode'").fetchone()
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'telemetry_readings'").fetchone()
        view = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'telemetry'").fetchone()
    assert versions == first
    assert mode is not None
    assert view == ("v",)  # the narrow view over the per-reading table
    if mode[0] == "plain":
        assert kind == ("p",)  # partitioned table


def test_concurrent_migrations_do_not_race(db_url: str) -> None:
    results: list[list[int]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(migrate(db_url))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    applied = [v for r in results for v in r]
    assert len(applied) == len(set(applied))  # each version applied once


def test_bad_migration_name_is_reported(tmp_path: object) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    (directory / "01_bad.sql").write_text("SELECT 1")
    with pytest.raises(MigrationError, match="NNN_name"):
        discover(directory)


def test_failed_migration_rolls_back(db_url: str, tmp_path: object) -> None:
    from pathlib import Path

    directory = Path(str(tmp_path))
    (directory / "001_ok.sql").write_text("CREATE TABLE ok_table (id int);")
    (directory / "002_broken.sql").write_text("CREATE TABLE half (id int); SELECT no_such_function();")
    with pytest.raises(MigrationError, match="002_broken"):
        migrate(db_url, directory=directory)
    with psycopg.connect(db_url) as conn:
        assert conn.execute("SELECT to_regclass('ok_table')").fetchone() == ("ok_table",)
        assert conn.execute("SELECT to_regclass('half')").fetchone() == (None,)


async def test_partitions_created_ahead_and_dropped(db_url: str) -> None:
    migrate(db_url, prefer_timescale=False)
    now = dt.datetime(2026, 3, 10, 12, tzinfo=dt.UTC)
    async with await psycopg.AsyncConnection.connect(db_url) as conn:
        async with conn.transaction():
            created = await partitions.ensure_ahead(conn, now, ahead_days=3)
        assert created == 2 * 5  # yesterday .. +3 days, both parents
        days = await partitions.existing_days(conn)
        assert dt.date(2026, 3, 13) in days
        assert dt.date(2026, 3, 9) in days
        async with conn.transaction():
            assert await partitions.ensure_ahead(conn, now, ahead_days=3) == 0
        async with conn.transaction():
            dropped = await partitions.drop_older_than(conn, dt.datetime(2026, 3, 11, tzinfo=dt.UTC))
        assert "telemetry_readings_p20260309" in dropped
        assert "telemetry_readings_p20260310" in dropped
        assert "telemetry_readings_p20260311" not in dropped


def test_analytics_alarms_renamed_per_fault(db_url: str) -> None:
    """670: alarms of the old per-channel rules take their fault's rule; of two current alarms of
    one fault on a device, the active one stays current and the other is archived, not deleted."""
    from pathlib import Path

    migrate(db_url)
    sql = (Path(__file__).parents[3] / "cloud/db/migrations/670_analytics_alarm_per_fault.sql").read_text()
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("DELETE FROM alarms WHERE community = 'c-670'")
        for rule, active in (("analytics.pump.current_excess", False), ("analytics.pump.current_excess_slow", True),
                             ("analytics.meter.energy_excess_cusum", True)):
            conn.execute(
                """INSERT INTO alarms (community, device, rule, source, severity, active, raised_at, last_raised_at,
                                       last_event_ms, updated_at)
                   VALUES ('c-670', 'p1', %s, 'fleet', 'warning', %s, now(), now(), 0, now())""", (rule, active))
        with conn.transaction():
            conn.execute(sql)
        rows = conn.execute("SELECT rule, active, current FROM alarms WHERE community = 'c-670' "
                            "ORDER BY rule, active").fetchall()
    assert rows == [("analytics.meter.energy_drift", True, True),
                    ("analytics.pump.bearing_wear", False, False),
                    ("analytics.pump.bearing_wear", True, True)]
