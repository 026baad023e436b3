"""The energy-target and report-subscription page (issue 17) on a pinned clock: it lists what the
API lists (targets, subscriptions with the next period in the community's zone), in Chinese by
default and in English; a community's engineer reads and gets the forms of their community only,
another community is 404, a butler 403; an admin also gets the company subscriptions."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.ops.reports.schedule import ReportDelivery
from cloud.ops.reports.tariffs import shipped
from guanjia.core.clock import ManualClock
from guanjia.core.settings import Settings
from tests.support.webapp import MakeUser, browser_session, serving

NOW = datetime(2027, 2, 10, 9, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], settings: Settings) -> Iterator[FastAPI]:
    from cloud.app import create_app

    with serving(create_app(settings, pool, clock=ManualClock(NOW))) as application:
        yield application


async def test_settings_page_lists_what_the_api_lists(client: httpx.AsyncClient, make_user: MakeUser,
                                                      pool: AsyncConnectionPool[Any]) -> None:
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code) VALUES ('ca'), ('cb')")
        await conn.execute("INSERT INTO buildings (community_id, code) SELECT id, 'b1' FROM communities"
                           " WHERE code = 'ca'")
    engineer = await make_user(Role.engineer, "ca")
    admin = await make_user(Role.admin)
    api = "/api/v1/manager-reports"
    assert (await client.put(f"{api}/targets", headers=engineer.headers, json={
        "community": "ca", "building": "b1", "period": "month", "kwh": "1500.5",
        "valid_from": "2027-01-01"})).status_code == 200
    sub = await client.post(f"{api}/subscriptions", headers=engineer.headers, json={
        "community": "ca", "period": "month", "emails": ["boss@example.com"], "language": "en"})
    assert sub.status_code == 201, sub.text
    assert (await client.post(f"{api}/company/subscriptions", headers=admin.headers, json={
        "period": "week", "emails": ["ceo@example.com"]})).status_code == 201
    listed = (await client.get(f"{api}/subscriptions", headers=engineer.headers)).json()
    assert [(s["community"], s["next_period"], s["next_send"], s["timezone"], s["last_sent"]) for s in listed] == [
        ("ca", "2027-02-01", "2027-02-28T16:00:00Z", "Asia/Shanghai", None)]
    # a weekly subscription made in January: the scheduler queues last week (1–7 Feb) for it, and
    # (standing in for the notification sender) its message went out at 08:00 on Monday 8 Feb
    async with pool.connection() as conn:
        cur = await conn.execute("INSERT INTO report_subscriptions (community, period, messengers, created_at)"
                                 " VALUES ('ca', 'week', '{wecom://key-0001}', %s) RETURNING id",
                                 (NOW - timedelta(days=30),))
        weekly = (await cur.fetchone() or (0,))[0]
        assert await ReportDelivery(shipped(), ManualClock(NOW)).run_once(conn) == [(weekly, date(2027, 2, 1))]
        await conn.execute("UPDATE notifications SET state = 'sent', sent_at = %s WHERE event = 'manager_report'",
                           (NOW - timedelta(days=2, hours=1),))

    me = await browser_session(client, engineer)
    page = await client.get("/reports/settings", headers=me)  # their own community by default
    assert page.status_code == 200, page.text[:300]
    assert "能耗指标与报表订阅 · ca" in page.text
    assert '<tr data-building="b1" data-period="month" data-from="2027-01-01">' in page.text
    assert "1500.500" in page.text
    assert "boss@example.com" in page.text
    assert "2027-02-01 起的一期" in page.text
    weekly_row = page.text.split(f'<tr data-id="{weekly}"')[1].split("</tr>")[0]
    assert "2027-02-01 起的一期" in weekly_row  # sent: last week
    assert "02-08 08:00 送达" in weekly_row  # in Shanghai time
    assert "2027-02-08 起的一期" in weekly_row  # next: this week
    assert "03-01 00:00 后发送" in page.text
    assert 'id="target-form"' in page.text
    assert 'id="subscription-form"' in page.text
    assert "ceo@example.com" not in page.text
    assert 'id="company-form"' not in page.text
    english = await client.get("/reports/settings?community=ca&lang=en", headers=me)
    assert "Energy targets and report subscriptions · ca" in english.text
    assert "the period from 2027-02-01" in english.text
    assert "whole community" in english.text
    assert (await client.get("/reports/settings?community=cb", headers=me)).status_code == 404
    assert (await client.get("/reports/settings?community=nope", headers=me)).status_code == 404
    report = await client.get("/reports?community=ca", headers=me)
    assert 'href="/reports/settings?community=ca"' in report.text

    boss = await browser_session(client, admin)
    company = await client.get("/reports/settings?community=cb", headers=boss)
    assert company.status_code == 200
    assert "ceo@example.com" in company.text
    assert 'id="company-form"' in company.text
    assert "boss@example.com" not in company.text  # ca's subscription is not on cb's page
    butler = await browser_session(client, await make_user(Role.butler, "ca"))
    assert (await client.get("/reports/settings?community=ca", headers=butler)).status_code == 403
