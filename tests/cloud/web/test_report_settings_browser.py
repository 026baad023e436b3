"""The energy-target and report-subscription page in a real Chromium (Playwright) against the real
app on uvicorn and a real PostgreSQL, on a pinned clock (Wed 10 Feb 2027, 09:00 in Shanghai), in
Chinese: a community's engineer sets a building's monthly target (a kWh of 0 is refused under its
field first, in Chinese), subscribes an address and a WeCom robot to the weekly report (a bad
address, no recipient at all and a bad robot URL are each refused under their field), sees when it
will send, and unsubscribes; an admin subscribes to the company report (issue 17)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.ops.reports import repo
from cloud.ops.reports.targets import Target
from guanjia.core.clock import ManualClock
from guanjia.core.settings import Settings
from tests.support.browser import BROWSER_MARKS, login, shot
from tests.support.webapp import MakeUser, serving

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = BROWSER_MARKS
NOW = datetime(2027, 2, 10, 9, tzinfo=ZoneInfo("Asia/Shanghai")).astimezone(UTC)
ROBOT = "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7aaa-4bc4-97a0-0ec2afa5aaa1"


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], settings: Settings) -> Iterator[FastAPI]:
    from cloud.app import create_app

    with serving(create_app(settings, pool, clock=ManualClock(NOW))) as application:
        yield application


async def test_target_and_subscription_from_the_page(live_server: str, chromium: Browser, make_user: MakeUser,
                                                     pool: AsyncConnectionPool[Any]) -> None:
    from playwright.async_api import expect

    me = await make_user(Role.engineer, "ca")
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code) VALUES ('ca'), ('cb')")
        await conn.execute("INSERT INTO buildings (community_id, code) SELECT id, 'b1' FROM communities"
                           " WHERE code = 'ca'")
    page = await login(chromium, live_server, me)
    await page.goto(f"{live_server}/reports?community=ca")
    await page.click("#settings-link")
    await expect(page.locator("h1")).to_contain_text("能耗指标与报表订阅 · ca")

    # --- a building's monthly target ---------------------------------------------------------------
    form = page.locator("#target-form")
    await form.locator("select[name=building]").select_option("b1")
    await form.locator("input[name=kwh]").fill("0")
    await form.locator("input[name=valid_from]").fill("2027-02-01")
    await form.locator("button.primary").click()
    await expect(form.locator('[data-error-for="kwh"]')).to_have_text("小于允许的最小值")
    await form.locator("input[name=kwh]").fill("1234.5")
    await form.locator("button.primary").click()
    row = page.locator('#target-rows tr[data-building="b1"][data-from="2027-02-01"]')
    await expect(row.locator(".kwh")).to_have_text("1234.500", timeout=10_000)
    await expect(row).to_contain_text("每月")
    async with pool.connection() as conn:
        assert await repo.list_targets(conn, "ca") == [Target("ca", "b1", "month", Decimal("1234.500"),
                                                              date(2027, 2, 1))]

    # --- a weekly subscription -------------------------------------------------------------------
    form = page.locator("#subscription-form")
    await form.locator("select[name=period]").select_option("week")
    await form.locator("button.primary").click()  # nobody to send to
    await expect(form.locator('[data-error-for="emails"]')).to_have_text("必填")
    await form.locator("input[name=messengers]").fill("https://example.com/hook")
    await form.locator("button.primary").click()
    await expect(form.locator('[data-error-for="messengers"]')).to_contain_text("值无效")
    await form.locator("input[name=emails]").fill("boss@ca, chief@ca.example.com")
    await form.locator("input[name=messengers]").fill(ROBOT)
    await form.locator("button.primary").click()
    await expect(form.locator('[data-error-for="emails"]')).to_have_text("格式不对")
    await expect(form.locator('[data-error-for="messengers"]')).to_be_empty()
    await form.locator("input[name=emails]").fill("boss@ca.example.com, chief@ca.example.com")
    await form.locator("button.primary").click()
    sub = page.locator('#subscription-rows tr[data-active="yes"]')
    await expect(sub).to_have_count(1, timeout=10_000)
    await expect(sub.locator('[data-channel="email"]')).to_have_count(2)
    await expect(sub.locator('[data-channel="messenger"]')).to_have_count(1)
    await expect(sub.locator(".last")).to_have_text("尚未发送")
    # made on Wednesday: last week closed before it, so this week goes after Monday 15 Feb 00:00 local
    await expect(sub.locator(".next")).to_contain_text("2027-02-08 起的一期")
    await expect(sub.locator(".next")).to_contain_text("02-15 00:00 后发送 (Asia/Shanghai)")
    async with pool.connection() as conn:
        (stored,) = await repo.subscriptions(conn, ["ca"])
    assert (stored.period, stored.emails, stored.language) == ("week", ["boss@ca.example.com",
                                                                        "chief@ca.example.com"], "zh")
    assert len(stored.messengers) == 1
    await shot(page, "report-settings")

    # --- unsubscribe ----------------------------------------------------------------------------------
    await sub.locator("form.subscription-delete button").click()
    stopped = page.locator('#subscription-rows tr[data-active="no"]')
    await expect(stopped.locator(".next")).to_have_text("已退订", timeout=10_000)
    await expect(stopped.locator("form.subscription-delete")).to_have_count(0)
    async with pool.connection() as conn:
        assert [s.active for s in await repo.subscriptions(conn, ["ca"])] == [False]


async def test_admin_subscribes_the_company_report(live_server: str, chromium: Browser, make_user: MakeUser,
                                                   pool: AsyncConnectionPool[Any]) -> None:
    """The company report's subscriptions are on the same page, for admins only (the API's rule)."""
    from playwright.async_api import expect

    admin = await make_user(Role.admin)
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code) VALUES ('ca')")
    page = await login(chromium, live_server, admin)
    await page.goto(f"{live_server}/reports/settings?community=ca")
    form = page.locator("#company-form")
    await form.locator("input[name=emails]").fill("ceo@example.com")
    await form.locator("select[name=language]").select_option("en")
    await form.locator("button.primary").click()
    row = page.locator('#company-rows tr[data-active="yes"]')
    await expect(row).to_contain_text("ceo@example.com", timeout=10_000)
    await expect(row).to_contain_text("英文")
    await expect(page.locator('#subscription-rows tr[data-active="yes"]')).to_have_count(0)
    async with pool.connection() as conn:
        (stored,) = await repo.subscriptions(conn, None)
    assert (stored.community, stored.period, stored.language) == (None, "month", "en")
