"""One regression test per finding of the held-out authorization probe (issue 14 §5).

The matrix (``test_authz_matrix.py``) proves the table is enforced everywhere; these pin the
concrete holes that were found, each as the probe saw it.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from bench.webdata import World, build_world
from cloud.app import create_app
from cloud.auth.roles import Role
from cloud.auth.service import client_address
from guanjia.core.errors import ConfigError
from guanjia.core.settings import DEMO_SECRET, Settings
from tests.support.webapp import Login, MakeUser, browser_session


@pytest.fixture
async def world(pool: AsyncConnectionPool[Any], make_user: MakeUser) -> tuple[World, Login]:
    butler = await make_user(Role.butler, "cA")
    async with pool.connection() as conn:
        world = await build_world(conn, ["cA", "cB"], devices_per_community=10, days=1, minute_days=0,
                                  butler_users={"cA": [butler.user.id]})
    return world, butler


async def _state(pool: AsyncConnectionPool[Any], wo_id: int) -> str:
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT state FROM work_orders WHERE id = %s", (wo_id,))).fetchone()
    assert row is not None
    return str(row[0])


async def test_raw_telemetry_is_staff_only_like_the_device(client: httpx.AsyncClient, world: tuple[World, Login],
                                                           make_user: MakeUser) -> None:
    w, butler = world
    resident = await make_user(Role.resident, "cA")
    engineer = await make_user(Role.engineer, "cA")
    gate = w.device_ids["cA"][0]
    for login in (resident, butler):
        for url in (f"/api/v1/devices/{gate}", f"/api/v1/devices/{gate}/telemetry"):
            resp = await client.get(url, headers=login.headers)
            assert resp.status_code == 403, (login.user.role, url, resp.text)
            assert resp.json()["error"]["code"] == "forbidden"
    assert (await client.get(f"/api/v1/devices/{gate}/telemetry", headers=engineer.headers)).status_code == 200


async def test_butler_without_record_moves_nothing_in_web_or_api(
        client: httpx.AsyncClient, pool: AsyncConnectionPool[Any], world: tuple[World, Login],
        make_user: MakeUser) -> None:
    w, _butler = world
    unlinked = await make_user(Role.butler, "cA")
    wo = w.work_order_ids["cA"][0]
    assert await _state(pool, wo) == "assigned"
    session = await browser_session(client, unlinked)
    web = await client.post(f"/inbox/{wo}/accept", headers=session, follow_redirects=False)
    assert web.status_code == 403
    assert web.headers["content-type"].startswith("text/html")
    api = await client.post(f"/api/v1/work-orders/{wo}/transitions", headers=unlinked.headers,
                            json={"action": "accept"})
    assert api.status_code == 403
    assert await _state(pool, wo) == "assigned"


async def test_a_butler_cannot_cancel_even_their_own_p0(client: httpx.AsyncClient, pool: AsyncConnectionPool[Any],
                                                        world: tuple[World, Login], make_user: MakeUser) -> None:
    w, butler = world
    wo = w.work_order_ids["cA"][0]  # assigned to this butler
    async with pool.connection() as conn:
        await conn.execute("UPDATE work_orders SET priority = 'P0' WHERE id = %s", (wo,))
    refused = await client.post(f"/api/v1/work-orders/{wo}/transitions", headers=butler.headers,
                                json={"action": "cancel", "note": "not me"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "forbidden"
    # the web inbox offers no cancel at all, and shares the check for what it offers
    session = await browser_session(client, butler)
    assert (await client.post(f"/inbox/{wo}/cancel", headers=session)).status_code == 404
    assert await _state(pool, wo) == "assigned"
    # the butler's own actions still work, through both doors
    accepted = await client.post(f"/inbox/{wo}/accept", headers=session, follow_redirects=False)
    assert accepted.status_code == 303
    assert await _state(pool, wo) == "accepted"
    engineer = await make_user(Role.engineer, "cA")
    cancelled = await client.post(f"/api/v1/work-orders/{wo}/transitions", headers=engineer.headers,
                                  json={"action": "cancel", "note": "duplicate"})
    assert cancelled.status_code == 200, cancelled.text
    assert await _state(pool, wo) == "cancelled"


async def test_logout_ends_the_session_server_side(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    engineer = await make_user(Role.engineer, "cA")
    session = await browser_session(client, engineer)
    assert (await client.get("/fleet", headers=session)).status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=session)).status_code == 200
    out = await client.post("/logout", headers=session, follow_redirects=False)
    assert out.status_code == 303
    client.cookies.clear()
    # the same cookie, replayed (another tab, a copied cookie): refused at once
    again = await client.get("/fleet", headers=session, follow_redirects=False)
    assert again.status_code == 303
    assert again.headers["location"].startswith("/login")
    api = await client.get("/api/v1/auth/me", headers=session)
    assert api.status_code == 401
    # other sessions and tokens of the same user are untouched
    assert (await client.get("/api/v1/auth/me", headers=engineer.headers)).status_code == 200
    assert (await client.get("/fleet", headers=await browser_session(client, engineer))).status_code == 200


@pytest.mark.parametrize("mode", ["production", "test"])
@pytest.mark.parametrize("key", [DEMO_SECRET, "short-key", "a" * 64, "abcabcabcabcabcabcabcabcabcabcabcabc"])
def test_weak_or_published_secrets_are_refused(mode: str, key: str) -> None:
    with pytest.raises(ConfigError, match="GUANJIA_SECRET_KEY"):
        Settings(mode=mode, secret_key=key)


def test_production_needs_a_key_and_test_mode_has_no_silent_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GUANJIA_SECRET_KEY", raising=False)
    with pytest.raises(ConfigError, match="GUANJIA_SECRET_KEY"):
        Settings(mode="production")
    settings = Settings(mode="test")
    assert settings.secret_key is None  # not the demo secret
    with pytest.raises(ConfigError, match="GUANJIA_SECRET_KEY"):
        create_app(settings, None)  # the API refuses to start without a key
    assert Settings(mode="demo").secret_key == DEMO_SECRET
    strong = "k3y-" + "0123456789abcdefghijklmnopqrstuvwxyz"
    assert Settings(mode="production", secret_key=strong).secret_key == strong


async def test_rotating_x_forwarded_for_does_not_escape_the_login_limit(client: httpx.AsyncClient,
                                                                         make_user: MakeUser) -> None:
    victim = await make_user(Role.admin)
    statuses = []
    for i in range(8):
        resp = await client.post("/api/v1/auth/token", data={"username": victim.user.username, "password": "wrong!"},
                                 headers={"X-Forwarded-For": f"198.51.100.{i}"})
        statuses.append(resp.status_code)
    assert statuses[:5] == [401] * 5
    assert statuses[5:] == [429] * 3, statuses


def test_forwarded_for_is_believed_only_from_configured_proxies() -> None:
    proxies = (ipaddress.ip_network("10.0.0.0/8"),)
    assert client_address("203.0.113.9", "198.51.100.1", proxies) == "203.0.113.9"  # not a proxy
    assert client_address("10.1.2.3", "198.51.100.1", proxies) == "198.51.100.1"
    # a client's own forged entries sit to the left of what the proxy appends
    assert client_address("10.1.2.3", "1.1.1.1, 198.51.100.1, 10.9.9.9", proxies) == "198.51.100.1"
    assert client_address("10.1.2.3", "garbage", proxies) == "10.1.2.3"
    assert client_address("10.1.2.3", None, proxies) == "10.1.2.3"
    with pytest.raises(ConfigError, match="GUANJIA_TRUSTED_PROXIES"):
        Settings(mode="demo", trusted_proxies="10.0.0.0/8, not-an-ip")


async def test_login_from_a_foreign_origin_is_refused(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    engineer = await make_user(Role.engineer, "cA")
    form = {"username": engineer.user.username, "password": engineer.password}
    for origin in ({"Origin": "https://evil.example"}, {"Referer": "https://evil.example/login"}, {"Origin": "null"}):
        resp = await client.post("/login", data=form, headers=origin, follow_redirects=False)
        assert resp.status_code == 403, origin
        assert "guanjia_session" not in resp.cookies
    ok = await client.post("/login", data=form, headers={"Origin": "http://testserver"}, follow_redirects=False)
    assert ok.status_code == 303
    assert "guanjia_session" in ok.cookies


async def test_add_user_form_defaults_to_the_least_privileged_role(
        client: httpx.AsyncClient, pool: AsyncConnectionPool[Any], make_user: MakeUser, app: FastAPI) -> None:
    admin = await make_user(Role.admin)
    session = await browser_session(client, admin)
    page = await client.get("/admin/users", headers=session)
    options = re.findall(r'<option value="(\w+)"( selected)?>', page.text.split('name="role"', 1)[1])
    assert options[0] == ("resident", " selected")
    # least privileged first; contractors (issue 17) sit below the property's own engineers
    assert [o for o, _sel in options[:5]] == ["resident", "butler", "contractor", "engineer", "admin"]
    created = await client.post("/admin/users", headers=session, follow_redirects=False,
                                data={"username": "newbie", "password": "pw-newbie-secret"})
    assert created.status_code == 303
    async with pool.connection() as conn:
        row = await (await conn.execute("SELECT role FROM users WHERE username = 'newbie'")).fetchone()
    assert row == ("resident",)
