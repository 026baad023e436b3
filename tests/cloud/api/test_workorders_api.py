"""The REST API and the SSE inbox, through the product's own app (auth, tenants, error shape)
against a real database; the SSE stream is served by a real uvicorn on a free port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.db.pool import open_pool
from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import default_policy
from guanjia.core.clock import SystemClock, to_ms
from guanjia.core.ports import free_port
from guanjia.core.settings import Settings
from tests.support.webapp import MakeUser, asgi_client, serving
from tests.support.workorders import add_butler

clock = SystemClock()
TEST_SECRET = "test-secret-key-for-the-workorder-tests-0123456789"


@pytest.fixture
async def pool(fresh_db: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with open_pool(fresh_db, min_size=1, max_size=4) as p:
        yield p


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], fresh_db: str, tmp_path: Path) -> Iterator[FastAPI]:
    from cloud.app import create_app

    settings = Settings(mode="test", database_url=fresh_db, secret_key=TEST_SECRET, run_dir=tmp_path / "run")
    with serving(create_app(settings, pool)) as application:
        yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with asgi_client(app) as c:
        yield c


# ``make_user`` is the plugin's (tests/plugins/webapp.py), resolved over this module's ``pool`` and ``client``


async def raise_trapped(pool: AsyncConnectionPool[Any], community: str, device: str) -> tuple[int, int]:
    event = AlarmEvent(community=community, device=device, rule="elevator_trapped", state="raise",
                       ts=to_ms(clock.now()), severity="critical", message="passengers trapped", work_order=True,
                       device_kind="elevator")
    async with pool.connection() as conn:
        result = await apply_event(conn, default_policy(), event, clock.now())
    assert result.alarm_id is not None
    assert result.work_order_id is not None
    return result.alarm_id, result.work_order_id


async def butler_login(pool: AsyncConnectionPool[Any], make_user: MakeUser, community: str) -> tuple[Any, int]:
    login = await make_user(Role.butler, community)
    async with pool.connection() as conn:
        butler = await add_butler(conn, login.user.username, community=community, phone="13700001111")
        await conn.execute("UPDATE butlers SET user_id = %s WHERE id = %s", (login.user.id, butler))
    return login, butler


async def test_work_order_api_flow(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient,
                                   make_user: MakeUser) -> None:
    me, butler = await butler_login(pool, make_user, "ca")
    _alarm_id, wo_id = await raise_trapped(pool, "ca", "lift-a1")
    listed = (await client.get("/api/v1/work-orders", headers=me.headers)).json()
    assert [w["id"] for w in listed["items"]] == [wo_id]
    assert listed["items"][0]["priority"] == "P0"
    accepted = await client.post(f"/api/v1/work-orders/{wo_id}/transitions", headers=me.headers,
                                 json={"action": "accept", "note": "on my way", "lat": 30.2, "lon": 120.1})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["state"] == "accepted"
    illegal = await client.post(f"/api/v1/work-orders/{wo_id}/transitions", headers=me.headers,
                                json={"action": "resolve"})  # legal for butlers, not from accepted
    assert illegal.status_code == 409
    error = illegal.json()["error"]
    assert error["code"] == "illegal_transition"
    assert error["detail"]["state"] == "accepted"
    assert set(error["detail"]["allowed"]) == {"reassign", "depart", "arrive", "hold", "cancel", "auto_close"}
    detail = (await client.get(f"/api/v1/work-orders/{wo_id}", headers=me.headers)).json()
    assert [t["action"] for t in detail["trail"]] == ["opened", "assign", "accept"]
    assert detail["trail"][-1]["lat"] == 30.2
    # the trail reads as people say it: names and words (Chinese by default), never butler:1
    assert [(t["actor_name"], t["action_text"]) for t in detail["trail"]] == [
        ("告警系统", "创建工单"), ("自动派单", "派单"), (me.user.username, "接单")]
    assert detail["trail"][-1]["to_state_text"] == "已接单"
    english = (await client.get(f"/api/v1/work-orders/{wo_id}?lang=en", headers=me.headers)).json()
    assert [(t["actor_name"], t["action_text"]) for t in english["trail"]] == [
        ("the alarm system", "opened the order"), ("automatic routing", "assigned"), (me.user.username, "accepted")]
    # another community's engineer and butler cannot see it
    stranger = await make_user(Role.engineer, "cb")
    assert (await client.get(f"/api/v1/work-orders/{wo_id}", headers=stranger.headers)).status_code == 404
    other, _ = await butler_login(pool, make_user, "ca")
    assert (await client.get(f"/api/v1/work-orders/{wo_id}", headers=other.headers)).status_code == 404
    assert (await client.get("/api/v1/work-orders", headers=other.headers)).json()["total"] == 0
    assert butler


async def test_resident_report_rating_and_masking(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient,
                                                  make_user: MakeUser) -> None:
    me, _butler = await butler_login(pool, make_user, "cr")
    resident = await make_user(Role.resident, "cr")
    neighbour = await make_user(Role.resident, "cr")
    created = await client.post("/api/v1/reports", headers=resident.headers, json={
        "community": "cr", "text": "楼道灯不亮", "location": "5号楼3层", "reporter_name": "王小明",
        "reporter_phone": "13912345678"})
    assert created.status_code == 201, created.text
    wo_id = created.json()["work_order_id"]
    assert not created.json()["linked"]
    # the resident may not move the order; the neighbour cannot even see it
    assert (await client.post(f"/api/v1/work-orders/{wo_id}/transitions", headers=resident.headers,
                              json={"action": "cancel"})).status_code == 403
    assert (await client.get(f"/api/v1/work-orders/{wo_id}", headers=neighbour.headers)).status_code == 404
    engineer_view = (await client.get(f"/api/v1/work-orders/{wo_id}", headers=me.headers)).json()
    assert engineer_view["reporter_phone"] == "13912345678"  # the assignee calls back
    for action in ("accept", "arrive", "resolve"):
        r = await client.post(f"/api/v1/work-orders/{wo_id}/transitions", headers=me.headers, json={"action": action})
        assert r.status_code == 200, r.text
    rated = await client.post(f"/api/v1/work-orders/{wo_id}/rating", headers=resident.headers,
                              json={"stars": 5, "comment": "很快"})
    assert rated.status_code == 200, rated.text
    assert rated.json()["state"] == "closed"
    again = await client.post(f"/api/v1/work-orders/{wo_id}/rating", headers=resident.headers, json={"stars": 4})
    assert again.status_code == 422
    liked = await client.post(f"/api/v1/work-orders/{wo_id}/like", headers=resident.headers)
    assert liked.status_code == 200, liked.text
    assert (await client.post(f"/api/v1/work-orders/{wo_id}/like", headers=resident.headers)).status_code == 422
    assert (await client.post(f"/api/v1/work-orders/{wo_id}/like", headers=neighbour.headers)).status_code == 404
    mine = (await client.get("/api/v1/work-orders", headers=resident.headers)).json()
    assert [w["id"] for w in mine["items"]] == [wo_id]
    lead = await make_user(Role.engineer, "cr")
    staff_list = (await client.get("/api/v1/work-orders?state=closed", headers=lead.headers)).json()
    assert staff_list["total"] == 1


async def test_alarm_api_list_and_ack(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient,
                                      make_user: MakeUser) -> None:
    engineer = await make_user(Role.engineer, "cx")
    alarm_id, wo_id = await raise_trapped(pool, "cx", "lift-x1")
    page = (await client.get("/api/v1/alarms?active=true", headers=engineer.headers)).json()
    assert page["total"] == 1
    assert page["items"][0]["status"] == "ACTIVE_UNACK"
    assert page["items"][0]["work_order_id"] == wo_id
    assert page["items"][0]["rule_title"] is None  # "elevator_trapped" is not a shipped rule (they all have one)
    acked = await client.post(f"/api/v1/alarms/{alarm_id}/ack", headers=engineer.headers, json={"note": "seen"})
    assert acked.status_code == 200
    assert acked.json()["status"] == "ACTIVE_ACK"
    detail = (await client.get(f"/api/v1/alarms/{alarm_id}", headers=engineer.headers)).json()
    assert [t["action"] for t in detail["trail"]] == ["raised", "acknowledged"]
    assert [t["action_text"] for t in detail["trail"]] == ["告警触发", "确认告警"]
    assert detail["trail"][-1]["actor_name"] == engineer.user.name
    other = await make_user(Role.engineer, "cy")
    assert (await client.get(f"/api/v1/alarms/{alarm_id}", headers=other.headers)).status_code == 404
    assert (await client.get("/api/v1/alarms", headers=other.headers)).json()["total"] == 0
    butler = await make_user(Role.butler, "cx")
    assert (await client.get("/api/v1/alarms", headers=butler.headers)).status_code == 403


async def test_sse_inbox_stream_live_and_replay(pool: AsyncConnectionPool[Any], app: FastAPI,
                                                make_user: MakeUser) -> None:
    me, _butler = await butler_login(pool, make_user, "cs")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.02)
        url = f"http://127.0.0.1:{port}/api/v1/inbox/stream"
        async with httpx.AsyncClient(timeout=10) as http, http.stream("GET", url, headers=me.headers) as resp:
            assert resp.status_code == 200
            events: list[tuple[str, dict[str, Any]]] = []
            current: dict[str, str] = {}
            lines = resp.aiter_lines()
            async with asyncio.timeout(10):
                async for line in lines:
                    if line.startswith(("event:", "data:", "id:")):
                        key, _, value = line.partition(":")
                        current[key] = value.strip()
                    elif not line and current:
                        events.append((current.get("event", ""), orjson.loads(current.get("data", "{}"))))
                        current = {}
                        if events[-1][0] == "ready":
                            _alarm, wo_id = await raise_trapped(pool, "cs", "lift-s1")
                        if events[-1][0] == "work_order.assigned":
                            break
        assert events[-1][1]["payload"]["work_order"]["id"] == wo_id
        first_id = events[-1][1]["id"]
        # reconnect with an older Last-Event-ID: what was missed is replayed first
        headers = me.headers | {"Last-Event-ID": str(first_id - 1)}
        async with httpx.AsyncClient(timeout=10) as http, http.stream("GET", url, headers=headers) as resp:
            async with asyncio.timeout(10):
                async for line in resp.aiter_lines():
                    if line.startswith("id:"):
                        assert int(line.partition(":")[2]) == first_id
                        break
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, 10)


async def test_alarm_carries_its_rules_zh_en_title(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient,
                                                   make_user: MakeUser) -> None:
    engineer = await make_user(Role.engineer, "cz")
    event = AlarmEvent(community="cz", device="lift-z1", rule="elevator-passengers-trapped", state="raise",
                       ts=to_ms(clock.now()), severity="critical", message="lift-z1: passengers trapped at floor 3",
                       work_order=True, device_kind="elevator")
    async with pool.connection() as conn:
        result = await apply_event(conn, default_policy(), event, clock.now())
    detail = (await client.get(f"/api/v1/alarms/{result.alarm_id}", headers=engineer.headers)).json()
    assert detail["rule_title"] == {"zh": "电梯困人", "en": "Passengers trapped"}
    assert detail["message"] == "lift-z1: passengers trapped at floor 3"  # the edge's words, kept
    order = (await client.get(f"/api/v1/work-orders/{result.work_order_id}", headers=engineer.headers)).json()
    assert order["rule_title"] == {"zh": "电梯困人", "en": "Passengers trapped"}
    listed = (await client.get("/api/v1/work-orders?community=cz", headers=engineer.headers)).json()
    assert listed["items"][0]["rule_title"] == order["rule_title"]


async def test_an_order_comes_with_its_title_in_both_languages(pool: AsyncConnectionPool[Any],
                                                               client: httpx.AsyncClient,
                                                               make_user: MakeUser) -> None:
    """``title`` is English, ``title_zh`` Chinese (issue 18): an alarm-born order's from its alarm's
    ``message_zh`` label, a staff order's typed words in both."""
    engineer = await make_user(Role.engineer, "cz")
    event = AlarmEvent(community="cz", device="pump-z1", rule="site-basement-leak", state="raise",
                       ts=to_ms(clock.now()), severity="major", message="pump-z1: water on the floor",
                       work_order=True, device_kind="pump", labels={"message_zh": "pump-z1：地面积水"})
    async with pool.connection() as conn:
        result = await apply_event(conn, default_policy(), event, clock.now())
    order = (await client.get(f"/api/v1/work-orders/{result.work_order_id}", headers=engineer.headers)).json()
    assert (order["title"], order["title_zh"]) == ("pump-z1: water on the floor", "pump-z1：地面积水")
    listed = (await client.get("/api/v1/work-orders?community=cz", headers=engineer.headers)).json()
    assert [(o["title"], o["title_zh"]) for o in listed["items"]] == [(order["title"], order["title_zh"])]
    alarm = (await client.get(f"/api/v1/alarms/{result.alarm_id}", headers=engineer.headers)).json()
    assert (alarm["message"], alarm["message_zh"]) == ("pump-z1: water on the floor", "pump-z1：地面积水")
