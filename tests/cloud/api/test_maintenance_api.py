"""Planned maintenance through the product's own app (auth, tenants, error shape) against a real
database, on a pinned clock: a staff member plans a lift's half-monthly maintenance, the scheduler
opens the order, the butler submits the checklist with photos, readings and a signature, the
staff confirms, and the plan shows the completion and the next due date."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.ops.maintenance.scheduler import run_once
from cloud.ops.maintenance.templates import shipped
from cloud.ops.model.policy import default_policy
from guanjia.core.clock import ManualClock
from guanjia.core.settings import Settings
from tests.support.webapp import MakeUser, serving
from tests.support.workorders import add_butler

SIGNATURE = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()
CLOCK = ManualClock(datetime(2027, 1, 29, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC))


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], settings: Settings) -> Iterator[FastAPI]:
    from cloud.app import create_app

    CLOCK.set(datetime(2027, 1, 29, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC))
    with serving(create_app(settings, pool, clock=CLOCK)) as application:
        yield application


async def _site(pool: AsyncConnectionPool[Any], community: str) -> None:
    async with pool.connection() as conn:
        cur = await conn.execute("INSERT INTO communities (code) VALUES (%s) RETURNING id", (community,))
        cid = (await cur.fetchone() or (0,))[0]
        cur = await conn.execute("INSERT INTO buildings (community_id, code) VALUES (%s, 'b1') RETURNING id", (cid,))
        bid = (await cur.fetchone() or (0,))[0]
        await conn.execute("INSERT INTO devices (community_id, building_id, code, kind) VALUES (%s, %s, 'lift-1', "
                           "'elevator')", (cid, bid))


def _answers() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for item in shipped().get("lift.half_monthly").items:
        answer: dict[str, Any] = {"id": item.id}
        if item.check == "reading":
            answer["value"] = 0.3 if item.unit == "mm" else 1.0
        else:
            answer["ok"] = True
        if item.photo:
            answer["photo"] = f"/photos/ca/{item.id}.jpg"
        out.append(answer)
    return out


async def test_plan_schedule_submit_confirm(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient,
                                            make_user: MakeUser) -> None:
    await _site(pool, "ca")
    await _site(pool, "cb")
    staff = await make_user(Role.engineer, "ca")
    me = await make_user(Role.butler, "ca")
    async with pool.connection() as conn:
        butler = await add_butler(conn, me.user.username, community="ca")
        await conn.execute("UPDATE butlers SET user_id = %s WHERE id = %s", (me.user.id, butler))

    templates = await client.get("/api/v1/maintenance/templates", headers=me.headers)
    assert templates.status_code == 200
    assert {"lift.half_monthly", "pump.monthly"} <= {t["id"] for t in templates.json()}

    body = {"community": "ca", "scope": "device", "target": "lift-1", "template": "lift.half_monthly",
            "starts_on": "2027-01-31", "assignee_id": butler}
    foreign = await client.post("/api/v1/maintenance/plans", json=body | {"community": "cb"}, headers=staff.headers)
    assert foreign.status_code == 404
    bad = await client.post("/api/v1/maintenance/plans", json=body | {"interval_days": 30}, headers=staff.headers)
    assert bad.status_code == 422
    assert "interval_days" in bad.json()["error"]["message"]
    created = await client.post("/api/v1/maintenance/plans", json=body, headers=staff.headers)
    assert created.status_code == 201, created.text
    device = created.json()["devices"][0]
    assert (device["device"], device["next_due"], device["open_work_order"]) == ("lift-1", "2027-01-31", None)

    async with pool.connection() as conn:
        wo_id, = (await run_once(conn, default_policy(), shipped(), CLOCK.now())).opened
    checklist = await client.get(f"/api/v1/work-orders/{wo_id}/maintenance", headers=me.headers)
    assert checklist.status_code == 200
    assert checklist.json()["planned"] is True
    assert len(checklist.json()["template"]["items"]) == 9
    for action in ("accept", "arrive"):
        resp = await client.post(f"/api/v1/work-orders/{wo_id}/transitions", json={"action": action},
                                 headers=me.headers)
        assert resp.status_code == 200, resp.text

    missing = await client.post(f"/api/v1/work-orders/{wo_id}/maintenance/submit",
                                json={"answers": _answers()[1:], "signature": SIGNATURE}, headers=me.headers)
    assert missing.status_code == 422
    assert "machine_room" in missing.json()["error"]["message"]
    early = await client.post(f"/api/v1/work-orders/{wo_id}/maintenance/confirm", json={"signature": SIGNATURE},
                              headers=staff.headers)
    assert early.status_code == 422
    done = await client.post(f"/api/v1/work-orders/{wo_id}/maintenance/submit",
                             json={"answers": _answers(), "signature": SIGNATURE}, headers=me.headers)
    assert done.status_code == 200, done.text
    assert done.json()["state"] == "resolved"
    butler_confirms = await client.post(f"/api/v1/work-orders/{wo_id}/maintenance/confirm",
                                        json={"signature": SIGNATURE}, headers=me.headers)
    assert butler_confirms.status_code == 403
    confirmed = await client.post(f"/api/v1/work-orders/{wo_id}/maintenance/confirm", json={"signature": SIGNATURE},
                                  headers=staff.headers)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["state"] == "closed"

    plans = await client.get("/api/v1/maintenance/plans", params={"community": "ca"}, headers=staff.headers)
    assert plans.status_code == 200
    device = plans.json()[0]["devices"][0]
    assert device["next_due"] == "2027-02-13"  # done 29 Jan (Shanghai) + 15 days
    assert device["last_completed"].startswith("2027-01-29T09:00:00+08:00")
    assert device["compliant"] is True
    assert (await client.get("/api/v1/maintenance/plans", params={"community": "cb"},
                             headers=staff.headers)).status_code == 404
    record = (await client.get(f"/api/v1/work-orders/{wo_id}/maintenance", headers=staff.headers)).json()["order"]
    assert record["state"] == "completed"
    assert record["maintainer_signed"] is True
    assert record["staff_signed"] is True
    assert "maintainer_signature" not in record
