"""One incident, one ticket, as people see it (issue 14 §3): a long gateway outage driven through
the real alarm lifecycle and offline watchdog, then read through the real app.

The API carries ``inhibited`` / ``inhibited_by`` on each grouped alarm; the device page marks
such an alarm "已抑制（网关离线）/ inhibited (gateway offline)"; the gateway's one work order lists
the affected devices in the inbox in the reader's language.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from psycopg_pool import AsyncConnectionPool

from bench.webdata import World, build_world
from cloud.auth.roles import Role
from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.alarms.offline import check_gateways
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import default_policy
from guanjia.core.clock import ManualClock, to_ms
from tests.support.webapp import Login, MakeUser

START = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)  # Monday 10:00 Asia/Shanghai
HEARTBEAT = timedelta(hours=1)  # only the gateway whose last will says "offline" is down


def comm(clock: ManualClock, device: str, kind: str) -> AlarmEvent:
    """A device's communication alarm as the edge rules library sends it."""
    return AlarmEvent(community="cA", device=device, rule=f"{kind}-offline", state="raise",
                      ts=to_ms(clock.now()), severity="major", message=f"{device}: monitoring offline",
                      work_order=True, labels={"category": "communication", "priority": "normal"},
                      gateway="gw-1", source="edge", device_kind=kind)


@pytest.fixture
async def outage(pool: AsyncConnectionPool[Any], make_user: MakeUser) -> tuple[Login, dict[str, Any]]:
    """cA's gateway offline past the grace, three device alarms grouped under it (two reached the
    cloud before its order opened, one after): the engineer and what happened."""
    engineer = await make_user(Role.engineer, "cA")
    policy = default_policy()
    clock = ManualClock(START)
    async with pool.connection() as conn:
        world: World = await build_world(conn, ["cA", "cB"], devices_per_community=8, days=1, minute_days=0,
                                          now=START)
        cur = await conn.execute(
            "SELECT d.id, d.code, d.name, d.kind FROM devices d JOIN communities c ON c.id = d.community_id"
            " WHERE c.code = 'cA' AND d.kind IN ('elevator', 'pump') ORDER BY d.code LIMIT 3")
        devices = await cur.fetchall()
        await conn.execute("UPDATE gateways SET online = false WHERE id = %s", (world.gateway_ids["cA"],))
        assert [r.outcome for r in await check_gateways(conn, policy, clock.now(), HEARTBEAT)] == ["held"]
        for _id, code, _name, kind in devices[:2]:
            clock.advance(timedelta(seconds=5))
            assert (await apply_event(conn, policy, comm(clock, code, kind), clock.now())).outcome == "inhibited"
        clock.advance(policy.inhibition.grace)
        assert [r.outcome for r in await check_gateways(conn, policy, clock.now(), HEARTBEAT)] == ["announced"]
        _id, code, _name, kind = devices[2]
        assert (await apply_event(conn, policy, comm(clock, code, kind), clock.now())).outcome == "inhibited"
        cur = await conn.execute("SELECT a.id, w.id FROM alarms a JOIN work_orders w ON w.alarm_id = a.id"
                                 " WHERE a.community = 'cA' AND a.rule = 'gateway_offline'")
        row = await cur.fetchone()
        assert row is not None
    return engineer, {"devices": devices, "gateway_alarm": row[0], "work_order": row[1]}


async def test_the_api_returns_inhibited_and_inhibited_by(client: httpx.AsyncClient,
                                                          outage: tuple[Login, dict[str, Any]]) -> None:
    engineer, seen = outage
    page = (await client.get("/api/v1/alarms?community=cA&active=true&limit=200", headers=engineer.headers)).json()
    grouped = {a["device"]: a for a in page["items"] if a["inhibited"]}
    assert set(grouped) == {code for _id, code, _name, _kind in seen["devices"]}
    assert {a["inhibited_by"] for a in grouped.values()} == {seen["gateway_alarm"]}
    assert all(a["work_order_id"] is None for a in grouped.values())  # no order of their own
    gateway = next(a for a in page["items"] if a["id"] == seen["gateway_alarm"])
    assert (gateway["inhibited"], gateway["inhibited_by"], gateway["work_order_id"]) == (False, None,
                                                                                        seen["work_order"])
    one = next(iter(grouped.values()))
    detail = (await client.get(f"/api/v1/alarms/{one['id']}", headers=engineer.headers)).json()
    assert (detail["inhibited"], detail["inhibited_by"]) == (True, seen["gateway_alarm"])
    assert "inhibited" in [e["action"] for e in detail["trail"]]
    history = (await client.get(f"/api/v1/devices/{seen['devices'][0][0]}/alarms", headers=engineer.headers)).json()
    assert [(a["inhibited"], a["inhibited_by"]) for a in history if a["rule"].endswith("-offline")] \
        == [(True, seen["gateway_alarm"])]


async def test_the_device_page_marks_an_inhibited_alarm(client: httpx.AsyncClient,
                                                        outage: tuple[Login, dict[str, Any]]) -> None:
    engineer, seen = outage
    await client.post("/login", data={"username": engineer.user.username, "password": engineer.password})
    device_id = seen["devices"][0][0]
    zh = await client.get(f"/devices/{device_id}?lang=zh")
    assert zh.status_code == 200
    assert zh.text.count("已抑制（网关离线）") == 1
    assert f"已归入网关离线告警 #{seen['gateway_alarm']}" in zh.text
    en = await client.get(f"/devices/{device_id}?lang=en")
    assert en.text.count("inhibited (gateway offline)") == 1
    # the gateway's own alarm and the world's ordinary faults carry no marker
    fleet = (await client.get("/api/v1/devices?state=alarming&community=cA", headers=engineer.headers)).json()
    ordinary = next(d["id"] for d in fleet["devices"] if d["id"] not in {i for i, *_ in seen["devices"]})
    assert "inhibited (gateway offline)" not in (await client.get(f"/devices/{ordinary}?lang=en")).text


@pytest.mark.parametrize("reader", ["butler", "engineer"])
async def test_the_gateway_order_lists_the_affected_devices(client: httpx.AsyncClient, pool: AsyncConnectionPool[Any],
                                                             make_user: MakeUser, reader: str,
                                                             outage: tuple[Login, dict[str, Any]]) -> None:
    """The butler the order was routed to reads it in their inbox; staff in the dispatcher view."""
    login, seen = outage
    wo = seen["work_order"]
    if reader == "butler":
        login = await make_user(Role.butler, "cA")
        async with pool.connection() as conn:
            cur = await conn.execute("UPDATE butlers SET user_id = %s WHERE id = (SELECT assignee_id FROM work_orders"
                                     " WHERE id = %s) RETURNING id", (login.user.id, wo))
            assert await cur.fetchone() is not None, "the gateway order was routed to a butler"
    await client.post("/login", data={"username": login.user.username, "password": login.password})
    for lang, heading, count, state in (("zh", "网关 gw-1 离线", "受影响设备（3 台）", "仍异常"),
                                        ("en", "Gateway gw-1 offline", "Affected devices (3)", "still failing")):
        page = await client.get(f"/inbox?lang={lang}")
        assert page.status_code == 200
        items = [chunk for chunk in page.text.split('<li class="order')[1:] if f'id="wo-{wo}"' in chunk]
        assert len(items) == 1, page.text[:500]
        html = items[0]
        assert heading in html
        assert count in html
        listed = [(code, re.sub(r"<[^>]+>", "", body))
                  for code, body in re.findall(r'<li data-device="([^"]+)">(.*?)</li>', html)]
        assert [code for code, _text in listed] == sorted(code for _id, code, _n, _k in seen["devices"])
        for _id, code, name, kind in seen["devices"]:
            text = dict(listed)[code]
            assert name in text
            assert f"({code})" in text
            assert f"{kind}-offline" in text
            assert state in text
        assert "/ affected devices" not in html  # the list, not the bilingual description string
