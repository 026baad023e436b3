"""Contracts through the product's app (real PostgreSQL, pinned clock): the staff create, list and
edit a contract with its kinds of work, SLA terms and validity; the list carries the holder's
measured compliance; bad terms are a 422 naming the field, another community's contract a 404, and
a contractor's user does not reach the contract list (403)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
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

NOW = datetime(2027, 1, 29, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
CLOCK = ManualClock(NOW)


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], settings: Settings) -> Iterator[FastAPI]:
    from cloud.app import create_app

    CLOCK.set(NOW)
    with serving(create_app(settings, pool, clock=CLOCK)) as application:
        yield application


async def test_contracts_create_list_edit_and_compliance(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient,
                                                         make_user: MakeUser) -> None:
    staff = await make_user(Role.engineer, "ca")
    other = await make_user(Role.engineer, "cb")
    contractor = await make_user(Role.contractor, "ca")
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code) VALUES ('ca'), ('cb')")
        cur = await conn.execute("INSERT INTO contractors (name, created_at) VALUES ('迅达', %s) RETURNING id", (NOW,))
        company = (await cur.fetchone() or (0,))[0]
        field = await add_butler(conn, "迅达张工", community="ca")
        await conn.execute("UPDATE butlers SET contractor_id = %s WHERE id = %s", (company, field))
        # two entrapments handled by the holder in the last 30 days: one on site in 20 min, one in 45
        for opened_at, on_site in ((NOW - timedelta(days=3), 20), (NOW - timedelta(days=2), 45)):
            await conn.execute(
                "INSERT INTO work_orders (community, skill, origin, title, priority, state, assignee_id, respond_due,"
                " on_site_due, resolve_due, on_site_at, resolved_at, created_at, updated_at) VALUES ('ca', 'elevator',"
                " 'alarm', '困人', 'P0', 'resolved', %s, %s, %s, %s, %s, %s, %s, %s)",
                (field, opened_at, opened_at, opened_at, opened_at + timedelta(minutes=on_site),
                 opened_at + timedelta(minutes=90), opened_at, opened_at))

    companies = await client.get("/api/v1/contractors", headers=staff.headers)
    assert companies.status_code == 200
    assert [c["name"] for c in companies.json()] == ["迅达"]
    body = {"contractor_id": company, "communities": ["ca"], "skill": "elevator", "work": ["maintenance", "rescue"],
            "on_site_within_min": 30, "resolve_within_min": 120, "starts_on": "2027-01-01",
            "reference": "WB-2027-01"}
    created = await client.post("/api/v1/contracts", json=body, headers=staff.headers)
    assert created.status_code == 201, created.text
    (contract,) = created.json()
    assert contract["valid"] is True
    assert (contract["orders"], contract["on_site_ratio"], contract["resolve_ratio"]) == (2, 0.5, 1.0)
    assert contract["work"] == ["maintenance", "rescue"]

    listed = await client.get("/api/v1/contracts", params={"community": "ca"}, headers=staff.headers)
    assert [c["id"] for c in listed.json()] == [contract["id"]]
    assert listed.json()[0] == contract  # the list and the create answer are the same read model

    # ended yesterday (local calendar): no longer valid
    terms = {k: body[k] for k in ("work", "on_site_within_min", "resolve_within_min", "starts_on", "reference")}
    edited = await client.put(f"/api/v1/contracts/{contract['id']}", json=terms | {"ends_on": "2027-01-28"},
                              headers=staff.headers)
    assert edited.status_code == 200, edited.text
    assert (edited.json()["valid"], edited.json()["ends_on"]) == (False, "2027-01-28")

    bad = await client.put(f"/api/v1/contracts/{contract['id']}", json=terms | {"ends_on": "2026-12-01"},
                           headers=staff.headers)
    assert bad.status_code == 422
    assert "ends_on" in bad.text
    slow = await client.post("/api/v1/contracts", json=body | {"starts_on": "2027-02-01", "resolve_within_min": 10},
                             headers=staff.headers)
    assert slow.status_code == 422
    unknown = await client.post("/api/v1/contracts", json=body | {"contractor_id": 999_999}, headers=staff.headers)
    assert unknown.status_code == 404
    assert (await client.put(f"/api/v1/contracts/{contract['id']}", json=terms,
                             headers=other.headers)).status_code == 404
    # several communities at once: all of the caller's, or nothing is created
    both = body | {"communities": ["ca", "cb"], "starts_on": "2027-02-01"}
    assert (await client.post("/api/v1/contracts", json=both, headers=staff.headers)).status_code == 404
    multi = await make_user(Role.engineer, "ca", "cb")
    made = await client.post("/api/v1/contracts", json=both, headers=multi.headers)
    assert made.status_code == 201, made.text
    assert [(c["community"], c["valid"]) for c in made.json()] == [("ca", False), ("cb", False)]  # from February
    assert (await client.get("/api/v1/contracts", params={"community": "ca"},
                             headers=contractor.headers)).status_code == 403
