"""Helpers for the web, API and security tests that drive the real app: the test secret, a
logged-in user (:class:`Login`), :func:`serving` and :func:`asgi_client` for tests that build an
app of their own, and :func:`browser_session` for the pages (session cookie + CSRF token). The
fixtures (``app``, ``client``, ``make_user`` …) are in ``tests/plugins/webapp.py``."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass

import httpx
from fastapi import FastAPI

from cloud.auth.users import User

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
