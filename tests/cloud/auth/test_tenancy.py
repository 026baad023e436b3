"""Authentication on every endpoint and tenant isolation on every resource endpoint.

The route lists come from the app itself, so a router added later is covered without editing
this file: a new public route must be added to ``PUBLIC`` on purpose, and a new path parameter
must be mapped to another tenant's resource in ``foreign_ids``.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from bench.webdata import World, build_world
from cloud.app import route_list
from cloud.auth.roles import Role
from cloud.web import photos
from guanjia.core.settings import Settings
from tests.support.webapp import Login, MakeUser, browser_session

PUBLIC = {
    "/healthz", "/metrics", "/api/v1/auth/token", "/api/openapi.json", "/api/docs", "/docs/oauth2-redirect",
    "/redoc", "/login", "/static/{path:path}", "/logout",
    "/api/v1/enroll",  # a gateway's one-time bootstrap token is the credential (cloud/auth/policy.py)
}
_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")


def _fill(path: str, ids: dict[str, Any]) -> str:
    return _PARAM.sub(lambda m: str(ids.get(m.group(1), 1)), path)


async def test_every_endpoint_requires_authentication(app: FastAPI, client: httpx.AsyncClient) -> None:
    checked = 0
    for method, path in route_list(app):
        if path in PUBLIC:
            continue
        resp = await client.request(method, _fill(path, {}), follow_redirects=False)
        if path.startswith("/api/"):
            assert resp.status_code == 401, f"{method} {path} -> {resp.status_code}"
            assert resp.json()["error"]["code"] == "unauthorized"
        else:  # an HTML page sends the browser to the login page
            assert resp.status_code in (303, 401), f"{method} {path} -> {resp.status_code}"
            if resp.status_code == 303:
                assert resp.headers["location"].startswith("/login")
        checked += 1
    assert checked >= 10


@pytest.fixture
async def world(pool: AsyncConnectionPool[Any]) -> World:
    async with pool.connection() as conn:
        return await build_world(conn, ["cA", "cB"], devices_per_community=8, days=3, minute_days=0)


async def _foreign_ids(pool: AsyncConnectionPool[Any], world: World, settings: Settings) -> dict[str, Any]:
    """Ids of community B's resources, by the path-parameter names the routers use."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT u.id FROM users u JOIN user_communities c ON c.user_id = u.id"
                                 " WHERE c.community = 'cB' LIMIT 1")
        row = await cur.fetchone()
        cur = await conn.execute(
            "INSERT INTO dead_letters (topic, community, gateway, gateway_id, reason, payload, payload_size)"
            " VALUES ('guanjia/v1/cB/gw-1/telemetry', 'cB', 'gw-1', %s, 'bad_json', '\\x00', 1) RETURNING id",
            (world.gateway_ids["cB"],))
        dead = await cur.fetchone()
        assert dead is not None
        await conn.execute(
            "INSERT INTO device_commands (command_id, community, device_id, device, point, value, issued_by,"
            " status, reason, created_at, expires_at) SELECT 'cmd-cB-1', 'cB', d.id, d.code, 'x', '1', 'eng',"
            " 'rejected', 'not_writable', now(), now() FROM devices d WHERE d.id = %s",
            (world.device_ids["cB"][0],))
        cur = await conn.execute("INSERT INTO complaints (community, grade, text, state, handle_due, close_due,"
                                 " created_at, updated_at) VALUES ('cB', 'general', 'x', 'received', now(), now(),"
                                 " now(), now()) RETURNING id")
        complaint = await cur.fetchone()
        assert complaint is not None
        cur = await conn.execute("INSERT INTO points_redemptions (butler_id, community, points, service, created_at)"
                                 " VALUES (%s, 'cB', 1, 'x', now()) RETURNING id", (world.butler_ids["cB"][0],))
        redemption = await cur.fetchone()
        assert redemption is not None
        # issue 17: a report subscription, a maintenance plan, an inspection route, a contract of cB
        cur = await conn.execute("INSERT INTO report_subscriptions (community, period, emails, created_at)"
                                 " VALUES ('cB', 'month', '{b@example.com}', now()) RETURNING id")
        subscription = await cur.fetchone()
        cur = await conn.execute("INSERT INTO maintenance_plans (community, scope, target, template, starts_on,"
                                 " created_at) VALUES ('cB', 'community', '', 'lift.half_monthly', current_date, now())"
                                 " RETURNING id")
        plan = await cur.fetchone()
        cur = await conn.execute("INSERT INTO inspection_routes (community, name, every_hours, created_at)"
                                 " VALUES ('cB', '巡查', 4, now()) RETURNING id")
        route = await cur.fetchone()
        cur = await conn.execute("INSERT INTO contractors (name, created_at) VALUES ('cB 维保', now()) RETURNING id")
        company = await cur.fetchone()
        assert subscription is not None
        assert plan is not None
        assert route is not None
        assert company is not None
        cur = await conn.execute(
            "INSERT INTO contractor_contracts (contractor_id, community, skill, on_site_within, resolve_within,"
            " starts_on, work, created_at) VALUES (%s, 'cB', 'elevator', '30 min', '2 h', current_date,"
            " '{maintenance}', now()) RETURNING id", (company[0],))
        contract = await cur.fetchone()
        # issue 19: a configuration rollout to cB's gateway
        await conn.execute("INSERT INTO edge_config_versions (gateway_id, version, files, created_by, created_at)"
                           " VALUES (%s, 'bbbbbbbbbbbb', '{}', 'admin', now())", (world.gateway_ids["cB"],))
        cur = await conn.execute("INSERT INTO config_rollouts (state, canary, percent, created_by, created_at,"
                                 " updated_at) VALUES ('halted', 1, 50, 'admin', now(), now()) RETURNING id")
        rollout = await cur.fetchone()
        assert contract is not None
        assert rollout is not None
        await conn.execute("INSERT INTO config_rollout_targets (rollout_id, gateway_id, position, stage, version,"
                           " push_id) VALUES (%s, %s, 0, 0, 'bbbbbbbbbbbb', 'r-cB')",
                           (rollout[0], world.gateway_ids["cB"]))
        # issue 15: a closure day in cB's own calendar
        await conn.execute("INSERT INTO community_calendar_days (community, day, kind, note, updated_at, updated_by)"
                           " VALUES ('cB', '2026-10-09', 'holiday', '停水检修', now(), 'admin')")
    b = "cB"
    photo = photos.store(settings.run_dir, b, b"\x89PNG\r\n\x1a\n" + bytes(16)).rsplit("/", 1)[1]
    return {
        "device_id": world.device_ids[b][0], "gateway_id": world.gateway_ids[b],
        "work_order_id": world.work_order_ids[b][0], "wo_id": world.work_order_ids[b][0],
        "order_id": world.work_order_ids[b][0], "alarm_id": world.alarm_ids[b][0],
        "butler_id": world.butler_ids[b][0], "user_id": row[0] if row else 999_999,
        "community": b, "report_id": world.work_order_ids[b][0], "dead_letter_id": dead[0],
        "name": photo, "path": "app.js", "action": "accept", "command_id": "cmd-cB-1", "complaint_id": complaint[0],
        "redemption_id": redemption[0], "subscription_id": subscription[0], "plan_id": plan[0], "route_id": route[0],
        "contract_id": contract[0], "rollout_id": rollout[0], "day": "2026-10-09",
    }


async def test_no_user_of_community_a_reaches_community_b(app: FastAPI, client: httpx.AsyncClient,
                                                          pool: AsyncConnectionPool[Any], world: World,
                                                          make_user: MakeUser, settings: Settings) -> None:
    await make_user(Role.butler, "cB")
    users: list[Login] = [await make_user(role, "cA") for role in (Role.engineer, Role.butler, Role.resident)]
    ids = await _foreign_ids(pool, world, settings)
    sessions = {login.user.id: await browser_session(client, login) for login in users}
    checked = 0
    for method, path in route_list(app):
        names = _PARAM.findall(path)
        if not names or path in PUBLIC or path.startswith("/static"):
            continue
        unknown = [n for n in names if n not in ids]
        assert not unknown, f"{path}: map {unknown} to a community-B resource in _foreign_ids"
        url = _fill(path, ids)
        for login in users:
            # the API with the bearer token, the pages with the browser session (cookie + CSRF)
            headers = ({**login.headers, "Accept": "application/json"} if path.startswith("/api/")
                       else sessions[login.user.id])
            resp = await client.request(method, url, headers=headers, json={}, follow_redirects=False)
            assert resp.status_code in (403, 404, 405, 409, 422), (
                f"{login.user.role} of cA: {method} {url} -> {resp.status_code} {resp.text[:200]}")
            checked += 1
    assert checked >= 10


async def test_lists_only_show_own_community(client: httpx.AsyncClient, world: World, make_user: MakeUser) -> None:
    eng = await make_user(Role.engineer, "cA")
    admin = await make_user(Role.admin)
    devices = (await client.get("/api/v1/devices", headers=eng.headers)).json()
    assert {d["community"] for d in devices["devices"]} == {"cA"}
    assert devices["total"] == 8
    assert (await client.get("/api/v1/devices?community=cB", headers=eng.headers)).status_code == 404
    all_devices = (await client.get("/api/v1/devices", headers=admin.headers)).json()
    assert all_devices["total"] == 16
    gws = (await client.get("/api/v1/gateways", headers=eng.headers)).json()
    assert [g["community"] for g in gws] == ["cA"]
    perf = (await client.get("/api/v1/dashboard/performance", headers=eng.headers)).json()
    assert {p["community"] for p in perf["by_community"]} == {"cA"}
    own = world.device_ids["cA"][0]
    telemetry = await client.get(f"/api/v1/devices/{own}/telemetry", headers=eng.headers)
    assert telemetry.status_code == 200
    foreign = world.device_ids["cB"][0]
    assert (await client.get(f"/api/v1/devices/{foreign}/telemetry", headers=eng.headers)).status_code == 404


async def test_role_checks(client: httpx.AsyncClient, world: World, make_user: MakeUser) -> None:
    butler = await make_user(Role.butler, "cA")
    resident = await make_user(Role.resident, "cA")
    own = world.device_ids["cA"][0]
    for login in (butler, resident):
        assert (await client.get("/api/v1/devices", headers=login.headers)).status_code == 403
        assert (await client.get(f"/api/v1/devices/{own}", headers=login.headers)).status_code == 403
        assert (await client.get("/api/v1/gateways", headers=login.headers)).status_code == 403
        assert (await client.get("/api/v1/dashboard/performance", headers=login.headers)).status_code == 403
        assert (await client.get("/api/v1/deadletter", headers=login.headers)).status_code in (403, 404)
