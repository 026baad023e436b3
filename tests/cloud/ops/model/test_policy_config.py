"""One work-order policy for every part (issue 14, section 7).

``GUANJIA_WO_POLICY`` used to reach only the service components (escalation ticker, alarm
processor); the API, the web inbox and analytics used the shipped default, so accepting an order
computed its deadlines from other SLA clocks than the ticker escalated it by. Now the policy is
loaded once (``Settings.wo_policy`` → ``ServiceContext.policy`` / ``app.state.policy``) and handed
to every user. These tests point the settings at a non-default policy file whose numbers appear
nowhere in the shipped one and check the deadlines of orders opened and accepted through the API,
accepted through the web inbox, and opened by analytics. The app runs on a :class:`ManualClock`
(a month end in the community's zone) so the expected deadlines are exact.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.auth.users import create_user
from cloud.db.pool import open_pool
from cloud.ops.model.policy import DEFAULT_POLICY, Policy, default_policy, load_policy
from cloud.runtime.context import CloudConfig
from cloud.service import service_policy
from guanjia.core.clock import ManualClock
from guanjia.core.settings import Settings
from tests.support.webapp import asgi_client, serving
from tests.support.workorders import add_butler

SECRET = "test-secret-key-for-the-policy-config-tests-0123456789"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
START = dt.datetime(2027, 1, 31, 23, 40, tzinfo=SHANGHAI)  # a month end, local time

P2 = "P2: {label: repair, respond: 7m, on_site: 50m, resolve: 5h, escalate_every: 3m}"
P3 = "P3: {label: preventive, respond: 11m, on_site: 2h, resolve: 1d, escalate_every: 9m}"


@pytest.fixture
def policy_file(tmp_path: Path) -> Path:
    text = Path(DEFAULT_POLICY).read_text(encoding="utf-8")
    text, n2 = re.subn(r"P2: \{[^}]*\}", P2, text)
    text, n3 = re.subn(r"P3: \{[^}]*\}", P3, text)
    assert (n2, n3) == (1, 1)
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def custom(policy_file: Path) -> Policy:
    policy = load_policy(policy_file)
    assert policy.priorities["P2"].respond != default_policy().priorities["P2"].respond
    return policy


@pytest.fixture
def settings(fresh_db: str, tmp_path: Path, policy_file: Path) -> Settings:
    return Settings(mode="test", database_url=fresh_db, secret_key=SECRET, run_dir=tmp_path / "run",
                    wo_policy=policy_file)


@pytest.fixture
async def pool(settings: Settings) -> AsyncIterator[AsyncConnectionPool[Any]]:
    assert settings.database_url is not None
    async with open_pool(settings.database_url, min_size=1, max_size=4) as p:
        yield p


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], settings: Settings, clock: ManualClock) -> Iterator[FastAPI]:
    from cloud.app import create_app

    with serving(create_app(settings, pool, clock=clock)) as application:  # no policy given: from the settings
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


async def _user(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient, role: Role, name: str,
                *, butler: bool = False) -> dict[str, str]:
    password = f"pw-{name}-Secret-42"
    async with pool.connection() as conn:
        user = await create_user(conn, name, password, role, ["cp"])
        if butler:
            butler_id = await add_butler(conn, name, community="cp", phone="13700001111")
            await conn.execute("UPDATE butlers SET user_id = %s WHERE id = %s", (user.id, butler_id))
    resp = await client.post("/api/v1/auth/token", data={"username": name, "password": password})
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}", "username": name, "password": password}


async def _order(pool: AsyncConnectionPool[Any], wo_id: int) -> dict[str, Any]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT created_at, respond_due, on_site_due, resolve_due, next_escalation_at, "
                                 "state FROM work_orders WHERE id = %s", (wo_id,))
        row = await cur.fetchone()
    assert row is not None
    return dict(zip(("created_at", "respond_due", "on_site_due", "resolve_due", "next_escalation_at", "state"),
                    row, strict=True))


def test_the_service_loads_the_policy_of_the_settings_once(settings: Settings, custom: Policy) -> None:
    assert service_policy(CloudConfig.from_settings(settings)) == custom
    assert service_policy(CloudConfig.from_settings(Settings(mode="test", database_url="postgresql://unused"))) \
        == default_policy()


async def _open_p2(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient, staff: dict[str, str]) -> int:
    resp = await client.post("/api/v1/work-orders", headers={"Authorization": staff["Authorization"]},
                             json={"community": "cp", "title": "水泵漏水 / pump leaking", "priority": "P2"})
    assert resp.status_code == 201, resp.text
    return int(resp.json()["work_order_id"])


async def test_api_open_and_accept_use_the_configured_policy(pool: AsyncConnectionPool[Any],
                                                              client: httpx.AsyncClient, clock: ManualClock,
                                                              custom: Policy) -> None:
    staff = await _user(pool, client, Role.engineer, "eng-api")
    await _user(pool, client, Role.butler, "butler-api", butler=True)
    wo_id = await _open_p2(pool, client, staff)
    wo = await _order(pool, wo_id)
    clocks = custom.priorities["P2"]
    assert wo["created_at"] == START
    assert (wo["respond_due"], wo["on_site_due"], wo["resolve_due"]) == (
        START + clocks.respond, START + clocks.on_site, START + clocks.resolve)
    # accepted after the on-site deadline passed: the next escalation is one policy step away
    clock.advance(clocks.on_site + dt.timedelta(minutes=1))
    # tokens expire on the same clock: sign in again after 51 minutes
    password = "pw-butler-api-Secret-42"
    token = (await client.post("/api/v1/auth/token", data={"username": "butler-api", "password": password})).json()
    resp = await client.post(f"/api/v1/work-orders/{wo_id}/transitions",
                             headers={"Authorization": f"Bearer {token['access_token']}"}, json={"action": "accept"})
    assert resp.status_code == 200, resp.text
    accepted = await _order(pool, wo_id)
    assert accepted["state"] == "accepted"
    assert accepted["next_escalation_at"] == clock.now() + clocks.escalate_every


async def test_web_inbox_accept_uses_the_configured_policy(pool: AsyncConnectionPool[Any],
                                                           client: httpx.AsyncClient, clock: ManualClock,
                                                           custom: Policy) -> None:
    staff = await _user(pool, client, Role.engineer, "eng-web")
    butler = await _user(pool, client, Role.butler, "butler-web", butler=True)
    wo_id = await _open_p2(pool, client, staff)
    clocks = custom.priorities["P2"]
    clock.advance(clocks.on_site + dt.timedelta(minutes=2))
    login = await client.post("/login", data={"username": butler["username"], "password": butler["password"]})
    assert login.status_code == 303, login.text
    page = await client.get("/inbox")
    assert page.status_code == 200
    token = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.text)
    assert token is not None
    resp = await client.post(f"/inbox/{wo_id}/accept", headers={"X-CSRF-Token": token.group(1),
                                                                "HX-Request": "true"})
    assert resp.status_code == 200, resp.text
    accepted = await _order(pool, wo_id)
    assert accepted["state"] == "accepted"
    assert accepted["next_escalation_at"] == clock.now() + clocks.escalate_every


async def test_analytics_opened_orders_use_the_configured_policy(settings: Settings, custom: Policy) -> None:
    from guanjia.app.demo_replay import replay_bearing_wear

    assert settings.database_url is not None
    now = dt.datetime(2027, 1, 1, 0, 30, tzinfo=SHANGHAI)
    async with await psycopg.AsyncConnection.connect(settings.database_url) as conn:
        result = await replay_bearing_wear(conn, community="cp", now=now, policy=custom)
        assert result.work_order is not None
        cur = await conn.execute("SELECT priority, respond_due - created_at, on_site_due - created_at "
                                 "FROM work_orders WHERE id = %s", (result.work_order["id"],))
        row = await cur.fetchone()
    clocks = custom.priorities["P3"]
    assert row == ("P3", clocks.respond, clocks.on_site)
