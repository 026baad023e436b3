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


async def test_redemption_requests_are_decided_by_staff(client: httpx.AsyncClient, make_user: MakeUser,
                                                        pool: AsyncConnectionPool[Any]) -> None:
    from datetime import UTC, datetime

    from cloud.ops.model.actors import Actor
    from cloud.ops.points import ledger, redemptions

    engineer = await make_user(Role.engineer, "cA")
    outsider = await make_user(Role.engineer, "cB")
    now = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    async with pool.connection() as conn:
        volunteer = await add_butler(conn, "志愿者小陈", community="cA", kind="volunteer")
        await ledger.adjust(conn, volunteer, 10, "社区活动", Actor("user", 1, "王经理", "engineer"), now)
        first = await redemptions.ask(conn, volunteer, 8, "家电清洗", now)
        second = await redemptions.ask(conn, volunteer, 5, "代购", now)  # both fit the balance when asked
    staff = {"Authorization": f"Bearer {engineer.token}"}
    listed = (await client.get("/api/v1/points/redemptions?community=cA", headers=staff)).json()
    assert [(r["id"], r["butler_name"], r["state"]) for r in listed] == [
        (first.id, "志愿者小陈", "pending"), (second.id, "志愿者小陈", "pending")]
    ok = await client.post(f"/api/v1/points/redemptions/{first.id}/decision", headers=staff, json={"approve": True})
    assert ok.status_code == 200, ok.text
    assert (ok.json()["state"], ok.json()["decided_by"]) == ("approved", engineer.user.name)
    # the balance was spent meanwhile: approving the second fails, the ledger never goes negative
    late = await client.post(f"/api/v1/points/redemptions/{second.id}/decision", headers=staff, json={"approve": True})
    assert late.status_code == 422
    assert "not enough points" in late.text
    no = await client.post(f"/api/v1/points/redemptions/{second.id}/decision", headers=staff, json={"approve": False})
    assert no.json()["state"] == "refused"
    again = await client.post(f"/api/v1/points/redemptions/{second.id}/decision", headers=staff,
                              json={"approve": True})
    assert again.status_code == 409
    foreign = {"Authorization": f"Bearer {outsider.token}"}
    assert (await client.post(f"/api/v1/points/redemptions/{first.id}/decision", headers=foreign,
                              json={"approve": False})).status_code == 404
    async with pool.connection() as conn:
        assert await ledger.balance(conn, volunteer) == 2
