"""A PostgreSQL of a test's own (a ``pytest_plugins`` module), for the tests that stop, kill or
restart the database: doing that to the session's shared server would break every other test."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from guanjia.app.stack import PostgresServer


@pytest.fixture
def own_pg() -> Iterator[PostgresServer]:
    """Started before the test, stopped and removed after it whatever the test did to it."""
    directory = Path(tempfile.mkdtemp(prefix="guanjia-pg-own-"))
    directory.chmod(0o755)  # the postgres system user must reach it when we run as root
    server = PostgresServer(directory / "pg")
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)
