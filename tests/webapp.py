"""The real app in-process, for the web, API and security tests (a ``pytest_plugins`` module).

Fixtures: a migrated database per test (``web_db``, copied from one template), the product's own
``cloud.api.app.create_app`` on an open pool (``app``; every router, every error handler), an
httpx client over the ASGI transport (``client``) and users with a bearer token (``make_user``),
all against a real PostgreSQL. Helpers for tests that build an app of their own: :func:`serving`,
:func:`asgi_client`, and :func:`browser_session` for the pages (session cookie + CSRF token).

Why a plugin and not a conftest: the security tests and the work-order API tests need the same
pieces, and a conftest is not a module to import from (pytest imports it under its own rules).
Directories that need another ``app`` or ``pool`` define their own fixture, which takes precedence.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.auth.users import User, create_user
from cloud.db.migrate import migrate
from cloud.db.pool import open_pool
from guanjia.core.settings import Settings

if TYPE_CHECKING:
    from tests.conftest import PgHandle

TEST_SECRET = "test-secret-key-for-the-web-tests-0123456789"
_CSRF = re.compile(r'name="csrf-token" content="([0-9a-f]+)"')


@dataclass(slots=True)
class Login:
    user: User
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


MakeUser = Callable[..., Awaitable[Login]]


@contextmanager
def serving(application: FastAPI) -> Iterator[FastAPI]:
    """``application`` for one test; the inbox router's LISTEN task (started on first use) is
    stopped afterwards."""
    try:
        yield application
    finally:
        hub = getattr(application.state, "inbox_hub", None)
        if hub is not None:
            hub.stop_detached()


@asynccontextmanager
async def asgi_client(app: FastAPI, *, peer: tuple[str, int] = ("127.0.0.1", 123)) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client driving ``app`` in-process; ``peer`` is the TCP peer the app sees."""
    transport = httpx.ASGITransport(app=app, client=peer)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def browser_session(client: httpx.AsyncClient, login: Login) -> dict[str, str]:
    """Log in through the form as a browser does: the headers of a page request afterwards, the
    session cookie and the CSRF token of the page (the client's own cookie jar is cleared, so a
    test can hold several sessions on one client)."""
    resp = await client.post("/login", data={"username": login.user.username, "password": login.password})
    assert resp.status_code == 303, resp.text[:300]
    token = resp.cookies["guanjia_session"]
    client.cookies.clear()
    home = await client.get(resp.headers["location"], headers={"Cookie": f"guanjia_session={token}"})
    csrf = _CSRF.search(home.text)
    assert csrf, home.text[:300]
    return {"Cookie": f"guanjia_session={token}", "X-CSRF-Token": csrf.group(1)}


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


@pytest.fixture
async def pool(web_db: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with open_pool(web_db, min_size=1, max_size=4) as p:
        yield p


@pytest.fixture
def settings(web_db: str, tmp_path: Path) -> Settings:
    return Settings(mode="test", database_url=web_db, secret_key=TEST_SECRET, run_dir=tmp_path / "run")


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], settings: Settings) -> Iterator[FastAPI]:
    from cloud.api.app import create_app

    with serving(create_app(settings, pool)) as application:
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
