"""Fixtures of the web/auth tests: a migrated database, the real app on an open pool, users.

The app is the product's own ``cloud.api.app.create_app`` (every router, every error handler),
driven in-process through httpx's ASGI transport against a real PostgreSQL.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.auth.users import User, create_user
from cloud.db.migrate import migrate
from cloud.db.pool import open_pool
from guanjia.settings import Settings
from tests.conftest import PgHandle

TEST_SECRET = "test-secret-key-for-the-web-tests-0123456789"


@pytest.fixture(scope="session")
def web_template(pg: PgHandle) -> str:
    """One migrated database, copied for each test (``CREATE DATABASE … TEMPLATE``): copying
    files is much faster than running every migration again."""
    url = pg.new_database()
    migrate(url, prefer_timescale=False)
    return str(psycopg.conninfo.conninfo_to_dict(url)["dbname"])


@pytest.fixture
def web_db(pg: PgHandle, web_template: str) -> str:
    name = f"w_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        for attempt in range(50):
            try:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{web_template}"')
                break
            except psycopg.errors.ObjectInUse:  # the migration's backend is still exiting
                if attempt == 49:
                    raise
                time.sleep(0.1)
    return psycopg.conninfo.make_conninfo(pg.admin_url, dbname=name)


def build_app(pool: AsyncConnectionPool[Any], settings: Settings) -> FastAPI:
    from cloud.api.app import create_app

    return create_app(settings, pool)


@pytest.fixture
async def pool(web_db: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with open_pool(web_db, min_size=1, max_size=4) as p:
        yield p


@pytest.fixture
def settings(web_db: str, tmp_path: Path) -> Settings:
    return Settings(mode="test", database_url=web_db, secret_key=TEST_SECRET, run_dir=tmp_path / "run")


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], settings: Settings) -> Iterator[FastAPI]:
    application = build_app(pool, settings)
    yield application
    hub = getattr(application.state, "inbox_hub", None)
    if hub is not None:  # the inbox router starts a LISTEN task on first use
        hub.stop_detached()


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, client=("10.1.2.3", 4567))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


@dataclass(slots=True)
class Login:
    user: User
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


MakeUser = Callable[..., Awaitable[Login]]


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


