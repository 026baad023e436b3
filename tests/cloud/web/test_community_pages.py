"""Staff's complaints page without a browser (httpx against the app): the communities' complaints
with their next actions in the reader's language, a move on each, the volunteers' redemption
requests approved or refused; another community's complaint is a 404, a resident gets 403."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.ops.complaints import repo as complaints
from cloud.ops.model.actors import Actor
from cloud.ops.model.policy import default_policy
from cloud.ops.points import ledger, redemptions
from tests.cloud.web.test_web_pages import browser, csrf_of
from tests.support.webapp import MakeUser
from tests.support.workorders import add_butler

NOW = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)


async def test_staff_move_complaints_and_decide_redemptions(client: httpx.AsyncClient, make_user: MakeUser,
                                                            pool: AsyncConnectionPool[Any]) -> None:
    engineer = await make_user(Role.engineer, "cA")
    resident = await make_user(Role.resident, "cA")
    async with pool.connection() as conn:
        mine = await complaints.file(conn, default_policy(), complaints.NewComplaint(
            "cA", "minor", "电梯广告太吵", reporter_user_id=resident.user.id), NOW,
            Actor("user", resident.user.id, "业主", "resident"))
        foreign = await complaints.file(conn, default_policy(), complaints.NewComplaint("cB", "minor", "别处"), NOW,
                                        Actor("user", 1, "x", "admin"))
        volunteer = await add_butler(conn, "志愿者小陈", community="cA", kind="volunteer")
        await ledger.adjust(conn, volunteer, 10, "社区活动", Actor("user", 1, "王经理", "engineer"), NOW)
        ask = await redemptions.ask(conn, volunteer, 4, "家电清洗", NOW)
    c = await browser(client, engineer)
    page = await c.get("/complaints")
    assert page.status_code == 200
    assert f'id="complaint-{mine["id"]}"' in page.text
    assert f'id="complaint-{foreign["id"]}"' not in page.text
    assert "轻微" in page.text
    assert "开始调查" in page.text
    token = csrf_of(page.text)
    for action, note in (("investigate", ""), ("handle", "已调低音量"), ("feedback", "广告音量已调低")):
        resp = await c.post(f"/complaints/{mine['id']}/{action}", data={"note": note, "csrf_token": token})
        assert resp.status_code == 303, resp.text
    assert (await c.post(f"/complaints/{foreign['id']}/investigate",
                         data={"csrf_token": token})).status_code == 404
    page = await c.get("/complaints?lang=en")
    row = re.search(rf'<tr id="complaint-{mine["id"]}">.*?</tr>', page.text, re.S)
    assert row is not None
    assert "Feedback given" in row.group(0)
    assert "Close" in row.group(0)
    assert f'id="redemption-{ask.id}"' in page.text
    resp = await c.post(f"/points/redemptions/{ask.id}", data={"decision": "approve", "csrf_token": token})
    assert resp.status_code == 303, resp.text
    async with pool.connection() as conn:
        assert await ledger.balance(conn, volunteer) == 6
        assert (await complaints.get(conn, mine["id"]))["state"] == "feedback"
    other = await browser(client, resident)
    assert (await other.get("/complaints")).status_code == 403
