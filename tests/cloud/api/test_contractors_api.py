"""A contractor company's user through the product's own app: they list and work the planned
lift maintenance assigned to their field staff, and reach nothing else — not the property's own
orders in the same community, not another community, not the staff's confirmation."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.ops.maintenance import repo
from cloud.ops.maintenance.scheduler import run_once
from cloud.ops.maintenance.templates import shipped
from cloud.ops.model.actors import Actor
from cloud.ops.model.policy import default_policy
from cloud.ops.workorders import repo as wo_repo
from guanjia.core.clock import ManualClock
from guanjia.core.settings import Settings
from tests.support.webapp import MakeUser, serving
from tests.support.workorders import add_butler

SIGNATURE = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
CLOCK = ManualClock()


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], settings: Settings) -> Iterator[FastAPI]:
    from cloud.app import create_app

    CLOCK.set(datetime(2027, 1, 29, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC))
    with serving(create_app(settings, pool, clock=CLOCK)) as application:
        yield application


async def test_contractor_sees_and_works_only_their_company_orders(
        pool: AsyncConnectionPool[Any], client: httpx.AsyncClient, make_user: MakeUser) -> None:
    policy, catalog = default_policy(), shipped()
    contractor = await make_user(Role.contractor, "ca")
    staff = await make_user(Role.engineer, "ca")
    async with pool.connection() as conn:
        cur = await conn.execute("INSERT INTO communities (code) VALUES ('ca') RETURNING id")
        cid = (await cur.fetchone() or (0,))[0]
        await conn.execute("INSERT INTO devices (community_id, code, kind) VALUES (%s, 'lift-1', 'elevator'), "
                           "(%s, 'lift-2', 'elevator')", (cid, cid))
        cur = await conn.execute("INSERT INTO contractors (name, created_at) VALUES ('迅达', %s) RETURNING id",
                                 (CLOCK.now(),))
        company = (await cur.fetchone() or (0,))[0]
        await conn.execute("UPDATE users SET contractor_id = %s WHERE id = %s", (company, contractor.user.id))
        field = await add_butler(conn, "迅达张工", community="ca", skills=("elevator",))
        await conn.execute("UPDATE butlers SET contractor_id = %s, user_id = %s WHERE id = %s",
                           (company, contractor.user.id, field))
        own = await add_butler(conn, "李管家", community="ca")
        for device, assignee in (("lift-1", field), ("lift-2", own)):
            await repo.create_plan(conn, catalog, community="ca", scope="device", target=device,
                                   template="lift.half_monthly", starts_on=date(2027, 1, 31), now=CLOCK.now(),
                                   assignee_id=assignee)
        opened = (await run_once(conn, policy, catalog, CLOCK.now())).opened
        theirs, ours = opened
        # a repair the routing gives to the property's butler (contractors are never auto-routed)
        repair = await wo_repo.open_order(conn, policy, wo_repo.NewOrder(
            community="ca", title="门禁故障", origin="staff", priority="P2", skill="elevator"), CLOCK.now(),
            Actor.system("test"))
    assert repair is not None
    assert repair["assignee_id"] == own

    listed = await client.get("/api/v1/contractor/orders", headers=contractor.headers)
    assert listed.status_code == 200
    assert [w["id"] for w in listed.json()["items"]] == [theirs]
    for wo_id in (ours, repair["id"]):
        assert (await client.get(f"/api/v1/work-orders/{wo_id}", headers=contractor.headers)).status_code == 404
        assert (await client.post(f"/api/v1/work-orders/{wo_id}/transitions", json={"action": "accept"},
                                  headers=contractor.headers)).status_code == 404
    assert (await client.get("/api/v1/work-orders", headers=contractor.headers)).status_code == 403
    assert (await client.get("/api/v1/maintenance/plans", params={"community": "ca"},
                             headers=contractor.headers)).status_code == 403

    for action in ("accept", "arrive"):
        resp = await client.post(f"/api/v1/work-orders/{theirs}/transitions", json={"action": action},
                                 headers=contractor.headers)
        assert resp.status_code == 200, resp.text
    answers = []
    for item in catalog.get("lift.half_monthly").items:
        answer: dict[str, Any] = {"id": item.id, "photo": "/photos/ca/p.jpg" if item.photo else None}
        answer |= {"value": 0.3 if item.unit == "mm" else 1.0} if item.check == "reading" else {"ok": True}
        answers.append(answer)
    done = await client.post(f"/api/v1/work-orders/{theirs}/maintenance/submit",
                             json={"answers": answers, "signature": SIGNATURE}, headers=contractor.headers)
    assert done.status_code == 200, done.text
    assert (await client.post(f"/api/v1/work-orders/{theirs}/maintenance/confirm", json={"signature": SIGNATURE},
                              headers=contractor.headers)).status_code == 403
    confirmed = await client.post(f"/api/v1/work-orders/{theirs}/maintenance/confirm",
                                  json={"signature": SIGNATURE}, headers=staff.headers)
    assert confirmed.json()["state"] == "closed"
    detail = await client.get(f"/api/v1/work-orders/{theirs}", headers=contractor.headers)
    actors = {t["actor"] for t in detail.json()["trail"] if t["action"] == "maintenance_submitted"}
    assert actors == {f"butler:{field}"}
