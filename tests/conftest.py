"""Shared fixtures: a real PostgreSQL and a real Mosquitto on free ports, started for the run.

``GUANJIA_TEST_DATABASE_URL`` points the tests at an existing server (for example a real
TimescaleDB); each test then gets a fresh database created on it. Nothing here is mocked.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from cloud.registry.broker import BrokerAccount
from guanjia.app.stack import MosquittoServer, PostgresServer
from guanjia.app.stack.postgres import find_bindir, timescaledb_available

# ``--at INSTANT`` / ``--tz ZONE``: run the session at another wall-clock instant (tests/timeshift.py);
# ``own_pg``, a database a test may stop (tests/own_pg.py); the real app and its users for the web,
# API and security tests (tests/webapp.py)
pytest_plugins = ["tests.timeshift", "tests.own_pg", "tests.webapp"]


def _service_dir(prefix: str) -> Path:
    # the postgres/mosquitto system users must be able to reach it when we run as root
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@dataclass(slots=True)
class PgHandle:
    """A PostgreSQL server for tests: ``admin_url`` to manage, ``new_database()`` for a clean DB."""

    admin_url: str
    server: PostgresServer | None

    def new_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return psycopg.conninfo.make_conninfo(self.admin_url, dbname=name)

    @property
    def timescaledb(self) -> bool:
        with psycopg.connect(self.admin_url) as conn:
            row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
        return row is not None


@pytest.fixture(scope="session")
def pg() -> Iterator[PgHandle]:
    if url := os.environ.get("GUANJIA_TEST_DATABASE_URL"):
        yield PgHandle(url, None)
        return
    directory = _service_dir("guanjia-pg-")
    server = PostgresServer(directory / "pg")
    server.start()
    try:
        yield PgHandle(server.url_for("postgres"), server)
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def db_url(pg: PgHandle) -> str:
    """A fresh, empty database on the session's server."""
    return pg.new_database()


@pytest.fixture
def require_timescaledb(pg: PgHandle) -> None:
    if not pg.timescaledb:
        where = "the test server" if pg.server is None else str(find_bindir())
        pytest.skip(f"TimescaleDB extension is not installed on {where} "
                    f"(timescaledb_available={timescaledb_available(find_bindir())})")


@dataclass(slots=True)
class BrokerHandle:
    """A running Mosquitto with an ``admin`` account (readwrite #) and helpers for more accounts."""

    server: MosquittoServer
    admin: BrokerAccount

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def admin_url(self) -> str:
        return self.server.url_for(self.admin)

    def add_account(self, account: BrokerAccount) -> str:
        self.server.set_accounts([account])
        return self.server.url_for(account)

    def add_gateway(self, community: str, gateway: str) -> tuple[BrokerAccount, str]:
        account = BrokerAccount.gateway(community, gateway)
        return account, self.add_account(account)


def _start_broker() -> BrokerHandle:
    server = MosquittoServer(_service_dir("guanjia-mq-") / "mq")
    admin = BrokerAccount("admin", secrets.token_urlsafe(12), [("readwrite", "#")])
    server.set_accounts([admin])
    server.start()
    return BrokerHandle(server, admin)


@pytest.fixture(scope="session")
def broker() -> Iterator[BrokerHandle]:
    """One broker for the session; tests must use unique topics/ids."""
    handle = _start_broker()
    try:
        yield handle
    finally:
        handle.server.stop()
        shutil.rmtree(handle.server.directory.parent, ignore_errors=True)


@pytest.fixture
def own_broker() -> Iterator[BrokerHandle]:
    """A broker of this test's own, for tests that stop, kill or restart it."""
    handle = _start_broker()
    try:
        yield handle
    finally:
        handle.server.stop(kill=True)
        shutil.rmtree(handle.server.directory.parent, ignore_errors=True)
