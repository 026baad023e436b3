"""The HTML pages through the real app: login by form, every role's pages, CSRF, i18n, and a
fault reported by a resident followed to a rated repair."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from bench.webdata import World, build_world
from cloud.auth.roles import Role
from tests.support.webapp import Login, MakeUser


@pytest.fixture
async def people(make_user: MakeUser) -> dict[str, Login]:
    return {
        "engineer": await make_user(Role.engineer, "cA"),
        "butler": await make_user(Role.butler, "cA"),
        "resident": await make_user(Role.resident, "cA"),
        "butler_b": await make_user(Role.butler, "cB"),
    }


@pytest.fixture
async def world(pool: AsyncConnectionPool[Any], people: dict[str, Login]) -> World:
    async with pool.connection() as conn:
        return await build_world(conn, ["cA", "cB"], devices_per_community=8, days=31, minute_days=1,
                                 butler_users={"cA": [people["butler"].user.id], "cB": [people["butler_b"].user.id]})


async def browser(app_client: httpx.AsyncClient, login: Login) -> httpx.AsyncClient:
    resp = await app_client.post("/login", data={"username": login.user.username, "password": login.password})
    assert resp.status_code == 303, resp.text
    assert "guanjia_session" in resp.cookies
    return app_client


def csrf_of(html: str) -> str:
    found = re.search(r'name="csrf-token" content="([0-9a-f]+)"', html)
    assert found, "page carries no CSRF token"
    return found.group(1)


async def test_login_page_and_redirects(client: httpx.AsyncClient, people: dict[str, Login]) -> None:
    assert (await client.get("/fleet")).status_code == 303
    page = await client.get("/login?lang=en")
    assert page.status_code == 200
    assert "Sign in" in page.text
    bad = await client.post("/login", data={"username": people["butler"].user.username, "password": "wrong-pw"})
    assert bad.status_code == 401
    resp = await client.post("/login", data={"username": people["butler"].user.username,
                                              "password": people["butler"].password, "next": "https://evil.example/"})
    assert resp.headers["location"] == "/inbox"  # no open redirect
    cookie = resp.headers["set-cookie"].lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie


async def test_engineer_pages(client: httpx.AsyncClient, world: World, people: dict[str, Login]) -> None:
    c = await browser(client, people["engineer"])
    fleet = await c.get("/fleet?lang=zh")
    assert fleet.status_code == 200
    assert "设备总览" in fleet.text
    assert fleet.text.count('href="/devices/') >= 8
    partial = await c.get("/fleet?kind=elevator&building=b1", headers={"HX-Request": "true"})
    assert "<html" not in partial.text
    assert "楼层" in partial.text or "floors" in partial.text
    own = world.device_ids["cA"][0]
    device = await c.get(f"/devices/{own}?lang=en")
    assert device.status_code == 200
    assert "Equipment health record" in device.text
    assert "Trips" in device.text  # the counter's label comes from the device profile
    assert (await c.get(f"/devices/{world.device_ids['cB'][0]}")).status_code == 404
    alarming = (await c.get("/api/v1/devices?state=alarming")).json()["devices"][0]["id"]
    page = await c.get(f"/devices/{alarming}")
    ack = re.search(r'hx-post="(/api/v1/alarms/\d+/ack)"', page.text)
    assert ack, "an active alarm offers acknowledge"
    resp = await c.post(ack.group(1), headers={"X-CSRF-Token": csrf_of(page.text)})  # the htmx call
    assert resp.status_code == 200, resp.text
    assert resp.json()["acknowledged"] is True
    series = await c.get(f"/api/v1/devices/{own}/series?metric=load_percent&range=30d")
    assert series.status_code == 200
    assert series.json()["source"] == "telemetry_1h"
    assert len(series.json()["t"]) >= 700
    day = await c.get(f"/api/v1/devices/{own}/series?metric=load_percent&range=24h")
    assert day.json()["source"] == "telemetry_1m"
    assert len(day.json()["t"]) >= 1000
    health = (await c.get(f"/api/v1/devices/{own}/health")).json()
    trips = {x["metric"]: x for x in health["counters"]}["run_count"]
    assert trips["last_24h"] == pytest.approx(24 * 20, rel=0.1)
    gw = await c.get(f"/gateways/{world.gateway_ids['cA']}")
    assert gw.status_code == 200
    assert "outbox.depth" in gw.text
    assert 'id="gw-incarnations"' in gw.text  # the outbox incarnations of the gateway's history
    assert (await c.get(f"/gateways/{world.gateway_ids['cB']}")).status_code == 404
    manager = await c.get("/manager?lang=en")
    assert "Responded in time" in manager.text
    assert "Mean days filed → closed (benchmark 1.8)" in manager.text  # complaints' cycle time
    assert "投诉" in (await c.get("/manager?lang=zh")).text
    assert (await c.get("/inbox")).status_code == 200  # staff see the dispatcher view
    assert (await c.get("/static/vendor/uPlot.iife.min.js")).status_code == 200
    assert (await c.get("/static/../pages.py")).status_code == 404


async def test_butler_inbox_actions_and_csrf(client: httpx.AsyncClient, world: World,
                                             people: dict[str, Login]) -> None:
    c = await browser(client, people["butler"])
    page = await c.get("/inbox")
    assert page.status_code == 200
    ids = [int(x) for x in re.findall(r'id="wo-(\d+)"', page.text)]
    assert ids, page.text[:500]
    assigned = [i for i in ids if f'id="wo-{i}" data-id="{i}" data-state="assigned"' in page.text]
    wo = assigned[0]
    # a cookie-authenticated POST without the CSRF token is refused
    assert (await c.post(f"/inbox/{wo}/accept")).status_code == 403
    token = csrf_of(page.text)
    for action in ("accept", "depart", "arrive"):
        resp = await c.post(f"/inbox/{wo}/{action}", headers={"X-CSRF-Token": token, "HX-Request": "true"})
        assert resp.status_code == 200, resp.text
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    resp = await c.post(f"/inbox/{wo}/resolve", data={"note": "replaced the door sensor", "csrf_token": token},
                        files={"photo": ("p.png", png, "image/png")})
    assert resp.status_code == 303
    trail = await c.get(f"/inbox/{wo}/trail")
    assert "replaced the door sensor" in trail.text
    photo = re.search(r'src="(/photos/cA/[0-9a-f]+\.png)"', trail.text)
    assert photo
    assert (await c.get(photo.group(1))).content == png
    illegal = await c.post(f"/inbox/{wo}/accept", headers={"X-CSRF-Token": token, "HX-Request": "true"})
    assert illegal.status_code == 409
    foreign = world.work_order_ids["cB"][0]
    assert (await c.get(f"/inbox/{foreign}/trail")).status_code == 404
    assert (await c.post(f"/inbox/{foreign}/accept", headers={"X-CSRF-Token": token})).status_code == 404
    assert (await c.get("/fleet")).status_code == 403


async def test_resident_reports_and_rates(client: httpx.AsyncClient, world: World, people: dict[str, Login],
                                         pool: AsyncConnectionPool[Any]) -> None:
    c = await browser(client, people["resident"])
    page = await c.get("/resident?lang=en")
    token = csrf_of(page.text)
    resp = await c.post("/resident/report", data={"text": "Lift 2 makes a grinding noise", "building": "b1",
                                                  "location": "lobby", "csrf_token": token})
    assert resp.status_code == 303, resp.text
    wo_id = int(resp.headers["location"].split("sent=")[1])
    mine = await c.get("/resident")
    assert f'id="wo-{wo_id}"' in mine.text
    async with pool.connection() as conn:  # the repair is done by staff
        await conn.execute("UPDATE work_orders SET state = 'resolved', resolved_at = now() WHERE id = %s", (wo_id,))
    resp = await c.post(f"/resident/rate/{wo_id}", data={"stars": "5", "comment": "fast", "csrf_token": token})
    assert resp.status_code == 303, resp.text
    again = await c.get("/resident?lang=en")
    assert "Rated 5★" in again.text
    foreign = world.work_order_ids["cB"][0]
    assert (await c.post(f"/resident/rate/{foreign}", data={"stars": "1", "csrf_token": token})).status_code == 404
    # a report about a device that already has an open order is linked to it; its reporter may rate it
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT id, device FROM work_orders WHERE community = 'cA' AND device IS NOT NULL"
                                 " AND state = 'assigned' ORDER BY id LIMIT 1")
        row = await cur.fetchone()
    assert row is not None
    resp = await c.post("/resident/report", data={"text": "door does not close", "device": row[1],
                                                  "csrf_token": token})
    assert resp.headers["location"] == f"/resident?sent={row[0]}"
    async with pool.connection() as conn:
        await conn.execute("UPDATE work_orders SET state = 'resolved', resolved_at = now() WHERE id = %s", (row[0],))
    resp = await c.post(f"/resident/rate/{row[0]}", data={"stars": "4", "csrf_token": token})
    assert resp.status_code == 303, resp.text


async def test_admin_manages_users(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user(Role.admin)
    engineer = await make_user(Role.engineer, "cA")
    c = await browser(client, engineer)
    assert (await c.get("/admin/users")).status_code == 403
    c.cookies.clear()
    c = await browser(client, admin)
    page = await c.get("/admin/users?lang=en")
    assert page.status_code == 200
    token = csrf_of(page.text)
    resp = await c.post("/admin/users", data={"username": "newbutler", "password": "newbutler-pw", "role": "butler",
                                              "communities": ["cA"], "csrf_token": token})
    assert resp.headers["location"] == "/admin/users?created=newbutler"
    weak = await c.post("/admin/users", data={"username": "weak", "password": "123", "role": "butler",
                                              "csrf_token": token})
    assert "error=" in weak.headers["location"]
    resp = await c.post(f"/admin/users/{engineer.user.id}/disable", data={"csrf_token": token})
    assert resp.status_code == 303
    assert (await client.get("/api/v1/auth/me", headers=engineer.headers)).status_code == 401


async def test_resident_reads_progress_and_reopens(client: httpx.AsyncClient, world: World,
                                                   people: dict[str, Login], pool: AsyncConnectionPool[Any]) -> None:
    c = await browser(client, people["resident"])
    page = await c.get("/resident?lang=en")
    token = csrf_of(page.text)
    resp = await c.post("/resident/report", data={"text": "Tap in the laundry leaks", "csrf_token": token})
    wo_id = int(resp.headers["location"].split("sent=")[1])
    mine = await c.get("/resident?lang=en")
    assert f"We received your report: work order #{wo_id}" in mine.text
    api = (await c.get("/api/v1/resident/inbox?lang=zh")).json()["items"]
    assert [m["step"] for m in api if m["work_order"] == wo_id][:1] == ["received"]
    assert api[0]["text"].startswith("已收到您的报修")
    assert "reopen" not in mine.text.split(f'id="wo-{wo_id}"')[1].split("</li>")[0]  # not resolved yet
    async with pool.connection() as conn:
        await conn.execute("UPDATE work_orders SET state = 'resolved', resolved_at = now() WHERE id = %s", (wo_id,))
    page = await c.get("/resident?lang=en")
    assert f'action="/resident/reopen/{wo_id}"' in page.text
    assert (await c.post(f"/resident/reopen/{wo_id}", data={"reason": "", "csrf_token": token})).status_code == 409
    resp = await c.post(f"/resident/reopen/{wo_id}", data={"reason": "still dripping", "csrf_token": token})
    assert resp.headers["location"] == f"/resident?reopened={wo_id}"
    foreign = world.work_order_ids["cB"][0]
    assert (await c.post(f"/resident/reopen/{foreign}", data={"reason": "x", "csrf_token": token})).status_code == 404
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT state FROM work_orders WHERE id = %s", (wo_id,))
        assert await cur.fetchone() == ("assigned",)
