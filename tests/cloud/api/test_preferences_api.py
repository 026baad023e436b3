"""``/api/v1/me/channel``: every signed-in user reads and chooses their own channel; a bad target
is a 422 whose message names the field; the choice is what the outbox reads."""

from __future__ import annotations

from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from tests.support.webapp import MakeUser


async def test_choose_read_and_refuse(client: httpx.AsyncClient, make_user: MakeUser,
                                      pool: AsyncConnectionPool[Any]) -> None:
    resident = await make_user(Role.resident, "cA")
    me = {"Authorization": f"Bearer {resident.token}"}
    assert (await client.get("/api/v1/me/channel", headers=me)).json() == {"channel": "inapp", "target": None}
    resp = await client.put("/api/v1/me/channel", headers=me, json={"channel": "sms", "target": "+86 138 1234 1234"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"channel": "sms", "target": "13812341234"}
    bad = await client.put("/api/v1/me/channel", headers=me, json={"channel": "email", "target": "not-an-address"})
    assert bad.status_code == 422
    assert "target: not an email address" in bad.text
    wx = await client.put("/api/v1/me/channel", headers=me, json={"channel": "messenger", "target": "wxwork://k"})
    assert wx.status_code == 422
    assert "wecombot://" in wx.text
    assert (await client.put("/api/v1/me/channel", headers=me, json={"channel": "fax"})).status_code == 422
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT notify_channel, notify_target FROM users WHERE id = %s", (resident.user.id,))
        assert await cur.fetchone() == ("sms", "13812341234")
    staff = await make_user(Role.engineer, "cA")
    resp = await client.put("/api/v1/me/channel", headers={"Authorization": f"Bearer {staff.token}"},
                            json={"channel": "email", "target": "ops@example.com"})
    assert resp.json() == {"channel": "email", "target": "ops@example.com"}
    assert (await client.get("/api/v1/me/channel", headers=me)).json()["channel"] == "sms"
