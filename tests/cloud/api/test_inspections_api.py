"""Inspection rounds through the product's own app against a real database, on a pinned clock:
staff create a route, print a checkpoint's QR code, a butler scans (one finding opens a work
order), the day's coverage counts it; another community's route is a 404."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from guanjia.core.clock import ManualClock
from guanjia.core.settings import Settings
from tests.support.webapp import MakeUser, serving
from tests.support.workorders import add_butler

SHANGHAI = ZoneInfo("Asia/Shanghai")
CLOCK = ManualClock()


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, 3, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], settings: Settings) -> Iterator[FastAPI]:
    from cloud.app import create_app

    CLOCK.set(local(1, 9, 0))
    with serving(create_app(settings, pool, clock=CLOCK)) as application:
        yield application


async def test_route_qr_scan_finding_coverage(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient,
                                              make_user: MakeUser) -> None:
    async with pool.connection() as conn:
        for code in ("ca", "cb"):
            await conn.execute("INSERT INTO communities (code) VALUES (%s)", (code,))
    staff = await make_user(Role.engineer, "ca")
    me = await make_user(Role.butler, "ca")
    async with pool.connection() as conn:
        butler = await add_butler(conn, me.user.username, community="ca")
        await conn.execute("UPDATE butlers SET user_id = %s WHERE id = %s", (me.user.id, butler))

    body = {"community": "ca", "name": "公共区域巡查", "every_hours": 12, "grace_minutes": 60,
            "checkpoints": [{"name": "大堂"}, {"name": "地下车库", "reading_unit": "ppm"}]}
    assert (await client.post("/api/v1/inspections/routes", json=body | {"community": "cb"},
                              headers=staff.headers)).status_code == 404
    assert (await client.post("/api/v1/inspections/routes", json=body | {"every_hours": 5},
                              headers=staff.headers)).status_code == 422
    assert (await client.post("/api/v1/inspections/routes", json=body, headers=me.headers)).status_code == 403
    created = await client.post("/api/v1/inspections/routes", json=body, headers=staff.headers)
    assert created.status_code == 201, created.text
    lobby, garage = created.json()["checkpoints"]

    qr = await client.get("/api/v1/inspections/qr", params={"community": "ca", "code": lobby["code"]},
                          headers=staff.headers)
    assert qr.status_code == 200
    assert qr.headers["content-type"].startswith("image/svg+xml")
    assert lobby["code"] in qr.text
    assert (await client.get("/api/v1/inspections/qr", params={"community": "ca", "code": "XJ-NOPE"},
                             headers=staff.headers)).status_code == 404

    routes = await client.get("/api/v1/inspections/routes", params={"community": "ca"}, headers=me.headers)
    assert [r["name"] for r in routes.json()] == ["公共区域巡查"]

    first = await client.post("/api/v1/inspections/scans", json={"community": "ca", "code": lobby["code"]},
                              headers=me.headers)
    assert first.status_code == 201, first.text
    no_reading = await client.post("/api/v1/inspections/scans", json={"community": "ca", "code": garage["code"]},
                                   headers=me.headers)
    assert no_reading.status_code == 422
    finding = await client.post("/api/v1/inspections/scans", headers=me.headers, json={
        "community": "ca", "code": garage["code"], "method": "code", "reading": 12.5, "finding": True,
        "note": "排风机不转 / exhaust fan stopped"})
    assert finding.status_code == 201
    wo_id = finding.json()["work_order_id"]
    wo = await client.get(f"/api/v1/work-orders/{wo_id}", headers=staff.headers)
    assert wo.json()["origin"] == "inspection"

    CLOCK.set(local(2, 1, 30))  # both slots of 1 March closed (+60 min grace)
    staff = await make_user(Role.engineer, "ca")  # a fresh sign-in: the morning's token has expired
    cov = await client.get("/api/v1/inspections/coverage", params={"community": "ca", "day": "2027-03-01"},
                           headers=staff.headers)
    assert cov.status_code == 200
    (row,) = cov.json()
    assert (row["expected"], row["covered"], row["ratio"]) == (4, 2, 0.5)
    assert {m["slot"] for m in row["missed"]} == {"12:00–00:00"}
    assert (await client.get("/api/v1/inspections/coverage", params={"community": "cb", "day": "2027-03-01"},
                             headers=staff.headers)).status_code == 404
