"""Migrated databases (a ``pytest_plugins`` module): one migrated template per storage mode,
copied for a test module or for a test, and dropped after.

Why templates: running every migration takes far longer than ``CREATE DATABASE … TEMPLATE``
copying the files of a database migrated once per session. Why one set for everyone: the six
per-team "migrated database" fixtures this replaces migrated the same schema over and over (one
of them only part of it) and never dropped what they created.

- ``migrated_template`` / ``timescale_template`` (session): the template databases' names; the
  TimescaleDB one only where the extension exists (skipped with a reason otherwise).
- ``module_db`` (module): a copy shared by the tests of one module. Its tests must not assume an
  empty database: they use unique names (``tests.support.ingest.unique``) and count only rows
  of their own.
- ``fresh_db`` (function): a copy of the test's own, for tests that read whole tables or rely on
  fixed names.
- ``wo_db``, ``ingest_db``, ``analytics_db``, ``storage_db``: the names the tests already used,
  kept so their diffs stay small.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from cloud.db.migrate import migrate
from tests.support.services import PgHandle


def _template(pg: PgHandle, *, timescale: bool) -> Iterator[str]:
    url = pg.new_database(prefix="tpl_ts_" if timescale else "tpl_")
    try:
        migrate(url, prefer_timescale=timescale)
        yield str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
    finally:
        pg.drop_database(url)


@pytest.fixture(scope="session")
def migrated_template(pg: PgHandle) -> Iterator[str]:
    """Every migration applied in plain-PostgreSQL mode (the mode with the most code of ours)."""
    yield from _template(pg, timescale=False)


@pytest.fixture(scope="session")
def timescale_template(pg: PgHandle) -> Iterator[str]:
    """Every migration applied in TimescaleDB mode, where the server has the extension."""
    if not pg.timescaledb:
        pytest.skip("TimescaleDB extension is not installed on the test server")
    yield from _template(pg, timescale=True)


def _copy(pg: PgHandle, template: str) -> Iterator[str]:
    url = pg.new_database(prefix="m_", template=template)
    try:
        yield url
    finally:
        pg.drop_database(url)


@pytest.fixture(scope="module")
def module_db(pg: PgHandle, migrated_template: str) -> Iterator[str]:
    """A migrated database shared by one test module (plain mode), dropped after the module."""
    yield from _copy(pg, migrated_template)


@pytest.fixture
def fresh_db(pg: PgHandle, migrated_template: str) -> Iterator[str]:
    """A migrated database of this test's own (plain mode), dropped after the test."""
    yield from _copy(pg, migrated_template)


@pytest.fixture
def wo_db(fresh_db: str) -> str:
    """Alarms, work orders, routing, notifications: the tests count butlers, orders and
    notifications of whole tables, so each test gets its own database."""
    return fresh_db


@pytest.fixture
def analytics_db(fresh_db: str) -> str:
    """Analytics: fixed device codes and whole-table model/score reads, so one database per test."""
    return fresh_db


@pytest.fixture
def ingest_db(fresh_db: str) -> str:
    """Ingest end to end: most of these tests count whole tables (telemetry, ingest_batches,
    dead_letters), so one database per test; a module whose queries are all scoped to its own
    gateway overrides this with ``module_db``."""
    return fresh_db


@pytest.fixture(params=["plain", "timescale"])
def storage_db(request: pytest.FixtureRequest, pg: PgHandle) -> Iterator[str]:
    """The same test on both storage modes (TimescaleDB skipped with a reason when absent); a
    database of the test's own, copied from that mode's template."""
    fixture = "timescale_template" if request.param == "timescale" else "migrated_template"
    template: str = request.getfixturevalue(fixture)
    yield from _copy(pg, template)
