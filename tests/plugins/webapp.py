"""The real app in-process, for the web, API and security tests (a ``pytest_plugins`` module).

Fixtures: a migrated database per test (``web_db``, copied from the session's template), the product's own
``cloud.app.create_app`` on an open pool (``app``; every router, every error handler), an
httpx client over the ASGI transport (``client``) and users with a bearer token (``make_user``),
all against a real PostgreSQL. Helpers for tests that build an app of their own (``serving``,
``asgi_client``, ``browser_session``): ``tests/support/webapp.py``.

Why a plugin and not a conftest: the security tests and the work-order API tests need the same
pieces, and a conftest is not a module to import from (pytest imports it under its own rules).
Directories that need another ``app`` or ``pool`` define their own fixture, which takes precedence.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.auth.users import create_user
from cloud.db.pool import open_pool
from guanjia.core.settings import Settings
from tests.support.webapp import TEST_SECRET, Login, MakeUser, asgi_client, serving


@pytest.fixture
def web_db(fresh_db: str) -> str:
    """A migrated database per test (copied from the session's template, dropped after): the
    web tests create users and orders with fixed names."""
    return fresh_db


@pytest.fixture
async def pool(web_db: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with open_pool(web_db, min_size=1, max_size=4) as p:
        yield p


@pytest.fixture
def settings(web_db: str, tmp_path: Path) -> Settings:
    return Settings(mode="test", database_url=web_db, secret_key=TEST_SECRET, run_dir=tmp_path / "run")


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], settings: Settings) -> Iterator[FastAPI]:
    from cloud.app import create_app
    from edge.bundle import check_bundle

    # as `guanjia cloud serve` builds it: the edge's bundle validator injected (guanjia.app does it there)
    with serving(create_app(settings, pool, edge_config=check_bundle)) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app, peer=("10.1.2.3", 4567)) as c:
        yield c


@pytest.fixture
def make_user(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient) -> MakeUser:
    counter = iter(range(1_000_000))

    async def _make(role: Role, *communities: str, name: str | None = None) -> Login:
        username = name or f"{role.value}{next(counter)}"
        password = f"pw-{username}-secret"
        async with pool.connection() as conn:
            user = await create_user(conn, username, password, role, communities)
        resp = await client.post("/api/v1/auth/token", data={"username": username, "password": password})
        assert resp.status_code == 200, resp.text
        return Login(user, password, resp.json()["access_token"])

    return _make
