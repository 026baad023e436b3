"""Volunteers' points over the REST API: staff adjust with a reason and redeem (never overdrawn),
workers read balances of their community, another community's butler is a 404."""

from __future__ import annotations

from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from tests.support.webapp import MakeUser
from tests.support.workorders import add_butler


async def test_adjust_redeem_read(client: httpx.AsyncClient, make_user: MakeUser,
                                  pool: AsyncConnectionPool[Any]) -> None:
    engineer = await make_user(Role.engineer, "cA")
    outsider = await make_user(Role.engineer, "cB")
    async with pool.connection() as conn:
        volunteer = await add_butler(conn, "志愿者小陈", community="cA", kind="volunteer")
    staff = {"Authorization": f"Bearer {engineer.token}"}
    base = f"/api/v1/butlers/{volunteer}/points"
    resp = await client.post(f"{base}/adjust", headers=staff, json={"delta": 30, "reason": "社区义诊协助"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["balance"] == 30
    over = await client.post(f"{base}/redeem", headers=staff, json={"points": 31, "service": "家电清洗"})
    assert over.status_code == 422
    assert "not enough points" in over.text
    done = (await client.post(f"{base}/redeem", headers=staff, json={"points": 20, "service": "家电清洗"})).json()
    assert done["balance"] == 10
    assert [(e["kind"], e["delta"], e["actor_name"]) for e in done["entries"]] == [
        ("redeem", -20, engineer.user.name), ("adjust", 30, engineer.user.name)]
    assert (await client.get(base, headers={"Authorization": f"Bearer {outsider.token}"})).status_code == 404
    assert (await client.post(f"{base}/adjust", headers=staff, json={"delta": 5, "reason": ""})).status_code == 422
