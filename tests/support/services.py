"""Handles on the session's real services: a PostgreSQL server and a Mosquitto broker.

The fixtures that start them live in ``tests/plugins/services.py``; the handle classes are here so
tests can name them in annotations without importing a conftest or a plugin.
"""

from __future__ import annotations

import secrets
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import psycopg

from cloud.registry.broker import BrokerAccount
from guanjia.app.stack import MosquittoServer, PostgresServer


def service_dir(prefix: str) -> Path:
    # the postgres/mosquitto system users must be able to reach it when we run as root
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


@dataclass(slots=True)
class PgHandle:
    """A PostgreSQL server for tests: ``admin_url`` to manage, ``new_database()`` for a clean DB.

    Every database a test creates is dropped by the fixture that made it (``drop_database``):
    with ``GUANJIA_TEST_DATABASE_URL`` the server outlives the run, and one database left per
    test used to pile up there.
    """

    admin_url: str
    server: PostgresServer | None

    def url_of(self, name: str) -> str:
        return psycopg.conninfo.make_conninfo(self.admin_url, dbname=name)

    def new_database(self, prefix: str = "t_", template: str | None = None) -> str:
        """A new database (empty, or a copy of ``template``); returns its URL."""
        name = f"{prefix}{uuid.uuid4().hex[:12]}"
        sql = f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            for attempt in range(50):
                try:
                    conn.execute(sql.encode())
                    break
                except psycopg.errors.ObjectInUse:  # the template's last backend is still exiting
                    if attempt == 49:
                        raise
                    time.sleep(0.1)
        return self.url_of(name)

    def drop_database(self, url: str) -> None:
        """Drop the database of ``url``; ``FORCE`` ends connections a test may have left behind
        (a killed worker's backend, a pool a failing test did not close)."""
        name = str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'.encode())

    @property
    def timescaledb(self) -> bool:
        with psycopg.connect(self.admin_url) as conn:
            row = conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'").fetchone()
        return row is not None


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


def start_broker() -> BrokerHandle:
    server = MosquittoServer(service_dir("guanjia-mq-") / "mq")
    admin = BrokerAccount("admin", secrets.token_urlsafe(12), [("readwrite", "#")])
    server.set_accounts([admin])
    server.start()
    return BrokerHandle(server, admin)
