"""The manager's report through the product's own app: JSON, a table as CSV, tenancy, bad periods."""

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

CLOCK = ManualClock()


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], settings: Settings) -> Iterator[FastAPI]:
    from cloud.app import create_app

    CLOCK.set(datetime(2027, 2, 2, 9, 0, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC))
    with serving(create_app(settings, pool, clock=CLOCK)) as application:
        yield application


async def test_report_json_csv_and_tenancy(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient,
                                           make_user: MakeUser) -> None:
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code) VALUES ('ca'), ('cb')")
        await conn.execute(
            "INSERT INTO work_orders (community, origin, title, priority, state, respond_due, on_site_due, resolve_due,"
            " created_at, updated_at, accepted_at) VALUES ('ca', 'staff', '漏水', 'P2', 'accepted', %(t)s, %(t)s,"
            " %(t)s, %(t)s, %(t)s, %(t)s)", {"t": datetime(2027, 1, 10, 2, 0, tzinfo=UTC)})
    staff = await make_user(Role.engineer, "ca")
    params = {"community": "ca", "start": "2027-01-15", "period": "month"}
    report = await client.get("/api/v1/manager-reports", params=params, headers=staff.headers)
    assert report.status_code == 200, report.text
    body = report.json()
    assert (body["start"], body["end"], body["final"]) == ("2027-01-01", "2027-01-31", True)
    assert body["work_orders"] == [{"origin": "staff", "priority": "P2", "opened": 1}]
    assert body["generated_at"].endswith("+08:00")

    csv_resp = await client.get("/api/v1/manager-reports/csv", params=params | {"table": "work_orders"},
                                headers=staff.headers)
    assert csv_resp.status_code == 200
    assert csv_resp.headers["content-type"].startswith("text/csv")
    assert "ca-month-2027-01-01-work_orders.csv" in csv_resp.headers["content-disposition"]
    assert csv_resp.content.startswith("\ufeff".encode())
    assert csv_resp.text.lstrip("\ufeff").splitlines() == ["origin,priority,opened", "staff,P2,1"]

    pdf = await client.get("/api/v1/manager-reports/pdf", params=params, headers=staff.headers)
    assert pdf.status_code == 200, pdf.text[:300]
    assert pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert (await client.get("/api/v1/manager-reports", params=params | {"community": "cb"},
                             headers=staff.headers)).status_code == 404
    assert (await client.get("/api/v1/manager-reports", params=params | {"start": "2027-03-01"},
                             headers=staff.headers)).status_code == 422
    assert (await client.get("/api/v1/manager-reports/csv", params=params | {"table": "nope"},
                             headers=staff.headers)).status_code == 422
    butler = await make_user(Role.butler, "ca")
    assert (await client.get("/api/v1/manager-reports", params=params, headers=butler.headers)).status_code == 403


async def test_company_report_targets_and_subscriptions(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient,
                                                        make_user: MakeUser) -> None:
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code) VALUES ('ca'), ('cb')")
    staff = await make_user(Role.engineer, "ca")
    admin = await make_user(Role.admin)
    params = {"start": "2027-01-15", "period": "month"}
    mine = (await client.get("/api/v1/manager-reports/company", params=params, headers=staff.headers)).json()
    assert [r["community"] for r in mine["communities"]] == ["ca", "合计 / total"]  # only the caller's
    every = (await client.get("/api/v1/manager-reports/company", params=params, headers=admin.headers)).json()
    assert [r["community"] for r in every["communities"]] == ["ca", "cb", "合计 / total"]
    csv_resp = await client.get("/api/v1/manager-reports/company/csv", params=params | {"table": "communities"},
                                headers=admin.headers)
    assert csv_resp.status_code == 200
    assert "company-month-2027-01-01-communities.csv" in csv_resp.headers["content-disposition"]
    pdf = await client.get("/api/v1/manager-reports/company/pdf", params=params, headers=admin.headers)
    assert pdf.content.startswith(b"%PDF")

    target = {"community": "ca", "period": "month", "kwh": "1200.5", "valid_from": "2027-01-01"}
    assert (await client.put("/api/v1/manager-reports/targets", json=target, headers=staff.headers)).status_code == 200
    assert (await client.put("/api/v1/manager-reports/targets", json=target | {"community": "cb"},
                             headers=staff.headers)).status_code == 404
    assert (await client.put("/api/v1/manager-reports/targets", json=target | {"kwh": "-1"},
                             headers=staff.headers)).status_code == 422
    listed = (await client.get("/api/v1/manager-reports/targets", params={"community": "ca"},
                               headers=staff.headers)).json()
    assert listed == [{"community": "ca", "building": None, "period": "month", "kwh": "1200.500",
                       "valid_from": "2027-01-01"}]
    report = (await client.get("/api/v1/manager-reports", params=params | {"community": "ca"},
                               headers=staff.headers)).json()
    assert report["energy_total"]["target_kwh"] == "1200.500"

    sub = {"community": "ca", "period": "week", "emails": ["boss@example.com"], "messengers": ["wecom://key-0001"]}
    created = await client.post("/api/v1/manager-reports/subscriptions", json=sub, headers=staff.headers)
    assert created.status_code == 201, created.text
    assert created.json()["last_period"] is None
    assert (await client.post("/api/v1/manager-reports/company/subscriptions", json=sub | {"community": None},
                              headers=staff.headers)).status_code == 403  # company: admins only
    assert (await client.post("/api/v1/manager-reports/subscriptions", json=sub | {"community": None},
                              headers=staff.headers)).status_code == 422
    assert (await client.post("/api/v1/manager-reports/subscriptions", json=sub | {"messengers": ["nope"]},
                              headers=staff.headers)).status_code == 422
    assert (await client.post("/api/v1/manager-reports/subscriptions", json=sub | {"emails": [], "messengers": []},
                              headers=staff.headers)).status_code == 422
    assert (await client.post("/api/v1/manager-reports/company/subscriptions", json=sub | {"community": None},
                              headers=admin.headers)).status_code == 201
    assert len((await client.get("/api/v1/manager-reports/subscriptions", headers=staff.headers)).json()) == 1
    sub_id = created.json()["id"]
    assert (await client.delete(f"/api/v1/manager-reports/subscriptions/{sub_id}",
                                headers=staff.headers)).status_code == 204
    listed = (await client.get("/api/v1/manager-reports/subscriptions", headers=staff.headers)).json()
    assert [s["active"] for s in listed] == [False]
    other = await make_user(Role.engineer, "cb")
    assert (await client.delete(f"/api/v1/manager-reports/subscriptions/{sub_id}",
                                headers=other.headers)).status_code == 404
