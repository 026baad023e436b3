"""The session's real services (a ``pytest_plugins`` module): a PostgreSQL and a Mosquitto on free
ports, started for the run, and an empty database per test.

``GUANJIA_TEST_DATABASE_URL`` points the tests at an existing server (for example a real
TimescaleDB); each test then gets fresh databases created on it, dropped afterwards. Nothing here
is mocked. Handle classes: ``tests/support/services.py``; migrated databases:
``tests/plugins/databases.py``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator

import pytest

from guanjia.app.stack import PostgresServer
from guanjia.app.stack.postgres import find_bindir, timescaledb_available
from tests.support.services import BrokerHandle, PgHandle, service_dir, start_broker


@pytest.fixture(scope="session")
def pg() -> Iterator[PgHandle]:
    if url := os.environ.get("GUANJIA_TEST_DATABASE_URL"):
        yield PgHandle(url, None)
        return
    directory = service_dir("guanjia-pg-")
    server = PostgresServer(directory / "pg")
    server.start()
    try:
        yield PgHandle(server.url_for("postgres"), server)
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def db_url(pg: PgHandle) -> Iterator[str]:
    """A fresh, empty database on the session's server, dropped after the test."""
    url = pg.new_database()
    yield url
    pg.drop_database(url)


@pytest.fixture
def require_timescaledb(pg: PgHandle) -> None:
    if not pg.timescaledb:
        where = "the test server" if pg.server is None else str(find_bindir())
        pytest.skip(f"TimescaleDB extension is not installed on {where} "
                    f"(timescaledb_available={timescaledb_available(find_bindir())})")


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerHandle]:
    """One broker for the session; tests must use unique topics/ids."""
    handle = start_broker()
    try:
        yield handle
    finally:
        handle.server.stop()
        shutil.rmtree(handle.server.directory.parent, ignore_errors=True)


@pytest.fixture
def own_broker() -> Iterator[BrokerHandle]:
    """A broker of this test's own, for tests that stop, kill or restart it."""
    handle = start_broker()
    try:
        yield handle
    finally:
        handle.server.stop(kill=True)
        shutil.rmtree(handle.server.directory.parent, ignore_errors=True)
