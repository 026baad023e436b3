"""The community loop's phone pages in a real Chromium (Playwright) on a phone-sized screen, against
the real app on uvicorn and a real PostgreSQL, with the app's clock pinned (ManualClock):

* a resident files a complaint, sees its grade and commitments in the community's time (Asia/
  Shanghai), follows staff's steps as readable progress, answers the feedback "satisfied", and
  chooses SMS as their channel (a bad number is refused with the field named);
* a volunteer accepts and completes a task handed to them from the butler inbox page, and sees the
  points it earned on their points page, where they request a redemption.

Skipped with a reason when Chromium or Playwright is not installed (as the other browser tests).
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.ops.complaints import repo as complaints
from cloud.ops.model.actors import Actor
from guanjia.core.clock import ManualClock
from tests.support.browser import BROWSER_MARKS, login
from tests.support.webapp import Login, MakeUser

if TYPE_CHECKING:
    from playwright.async_api import Browser, Page

with contextlib.suppress(ImportError):  # without the dev extra the marks skip every test
    from playwright.async_api import expect

pytestmark = BROWSER_MARKS
STAFF = Actor("user", 1, "王经理", "engineer")


@pytest.fixture
def pinned(app: FastAPI, clock: ManualClock) -> ManualClock:
    app.state.clock = clock
    return clock


async def phone(chromium: Browser, base: str, who: Login) -> Page:
    return await login(chromium, base, who, width=390, height=844, mobile=True)


async def send(page: Page, form: str, **values: str) -> None:
    """Fill a form's fields by name (selects by value) and press its button."""
    for name, value in values.items():
        field = page.locator(f"{form} [name={name}]")
        if await field.evaluate("e => e.tagName") == "SELECT":
            await field.select_option(value)
        else:
            await field.fill(value)
    await page.click(f"{form} button")


async def test_resident_complaint_on_the_phone(live_server: str, chromium: Browser, pool: AsyncConnectionPool[Any],
                                               make_user: MakeUser, pinned: ManualClock) -> None:
    resident = await make_user(Role.resident, "cA")
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code, timezone) VALUES ('cA', 'Asia/Shanghai')")
    page = await phone(chromium, live_server, resident)
    try:
        await page.goto(f"{live_server}/resident")
        await page.click("#complaints-link")
        await expect(page.locator("h1")).to_have_text("投诉")
        await page.fill("#complaint-form textarea[name=text]", "楼道堆放杂物无人清理")
        await page.select_option("#complaint-form select[name=grade]", "serious")
        await page.click("#complaint-submit")
        await expect(page.locator("#filed")).to_contain_text("已收到投诉 #")
        item = page.locator("#my-complaints .complaint").first
        await expect(item.locator(".grade")).to_have_text("重大")
        await expect(item.locator(".state")).to_have_text("已受理")
        # 2026-01-05 10:00 in Shanghai + 24 h and + 3 days
        await expect(item.locator(".handle-by")).to_contain_text("01-06 10:00")
        await expect(item.locator(".close-by")).to_contain_text("01-08 10:00")
        complaint_id = int((await item.get_attribute("id") or "").removeprefix("complaint-"))

        async with pool.connection() as conn:
            for action, note in (("investigate", ""), ("handle", "已清理"), ("feedback", "杂物已清走，已提醒邻居")):
                pinned.advance(timedelta(hours=2))
                await complaints.transition(conn, complaint_id, action, STAFF, pinned.now(), note)
        await page.reload()
        await expect(item.locator(".state")).to_have_text("已反馈")
        await expect(item.locator(".trail-list")).to_contain_text("王经理 向业主反馈")
        await expect(item.locator(".trail-list")).to_contain_text("杂物已清走")
        await item.locator("input[name=comment]").fill("谢谢")
        await item.locator("button[value=yes]").click()
        await expect(page.locator("#replied")).to_be_visible()
        await expect(page.locator(f"#complaint-{complaint_id} .state")).to_have_text("已关闭")
        await expect(page.locator(f"#complaint-{complaint_id} .trail-list")).to_contain_text("业主满意")

        await send(page, "#channel-form", channel="sms", target="12345")
        await expect(page.locator("body")).to_contain_text("target: not a mainland mobile number")
        await page.go_back()
        await send(page, "#channel-form", channel="sms", target="138 1234 1234")
        await expect(page.locator("#saved")).to_be_visible()
        await expect(page.locator("#channel-form input[name=target]")).to_have_value("13812341234")
    finally:
        await page.context.close()


async def test_volunteer_task_from_the_inbox_to_points(live_server: str, chromium: Browser,
                                                       pool: AsyncConnectionPool[Any], make_user: MakeUser,
                                                       pinned: ManualClock) -> None:
    from cloud.ops.model.policy import default_policy
    from cloud.ops.points import ledger
    from cloud.ops.workorders.reports import Report, submit_report
    from tests.support.workorders import add_butler

    chen_login = await make_user(Role.butler, "cA")
    xiao_login = await make_user(Role.butler, "cA")
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code, timezone) VALUES ('cA', 'Asia/Shanghai')")
        chen = await add_butler(conn, "陈师傅", community="cA", star=4)
        xiao = await add_butler(conn, "志愿者小萧", community="cA", kind="volunteer")
        for user_id, butler in ((chen_login.user.id, chen), (xiao_login.user.id, xiao)):
            await conn.execute("UPDATE butlers SET user_id = %s WHERE id = %s", (user_id, butler))
        wo, _ = await submit_report(conn, default_policy(), Report(community="cA", text="楼道灯不亮"), pinned.now(),
                                    Actor("user", 99, "业主", "resident"))
    assert wo["assignee_id"] == chen  # routing never picks a volunteer by itself

    page = await phone(chromium, live_server, chen_login)
    try:
        await page.goto(f"{live_server}/inbox")
        await expect(page.locator("#star")).to_contain_text("★★★★")
        await page.locator("#star .star-rule summary").click()
        await expect(page.locator("#star .star-rule")).to_contain_text("业主评分占 50%")
        card = page.locator(f"#wo-{wo['id']}")
        await card.locator("select[name=volunteer]").select_option(str(xiao))
        await card.locator(".act-handoff").click()
        await expect(page.locator(f"#wo-{wo['id']}")).to_have_count(0)  # it is the volunteer's now
    finally:
        await page.context.close()

    page = await phone(chromium, live_server, xiao_login)
    try:
        await page.goto(f"{live_server}/inbox")
        card = page.locator(f"#wo-{wo['id']}")
        await expect(card).to_be_visible()
        await card.locator("details summary").click()
        await expect(card.locator(".trail")).to_contain_text("陈师傅 改派")
        await expect(card.locator(".trail")).to_contain_text("交给 志愿者小萧")
        await card.locator(".act-accept").click()
        await expect(page.locator(f"#wo-{wo['id']}[data-state=accepted]")).to_be_visible(timeout=10_000)
        await page.locator(f"#wo-{wo['id']} .act-arrive").click()
        await expect(page.locator(f"#wo-{wo['id']}[data-state=on_site]")).to_be_visible(timeout=10_000)
        await page.locator(f"#wo-{wo['id']} .act-resolve").click()
        await expect(page.locator(f"#wo-{wo['id']}")).to_have_count(0, timeout=10_000)

        await page.goto(f"{live_server}/volunteer/points")
        await expect(page.locator("h1")).to_have_text("我的积分")
        earned = default_policy().points.per_skill.get(wo["skill"], default_policy().points.default)
        await expect(page.locator("#balance")).to_have_text(str(earned))
        await expect(page.locator("#ledger .kind-task")).to_contain_text(f"+{earned}")
        await expect(page.locator("#ledger .kind-task")).to_contain_text("01-05 10:")  # community time, pinned
        await send(page, "#redeem-form", points=str(earned + 1), service="家电清洗")
        await expect(page.locator("body")).to_contain_text("not enough points")
        await page.go_back()
        await send(page, "#redeem-form", points="1", service="家电清洗")
        await expect(page.locator("#requested")).to_be_visible()
        await expect(page.locator("#requests .state-pending")).to_contain_text("家电清洗")
    finally:
        await page.context.close()
    async with pool.connection() as conn:
        assert await ledger.balance(conn, xiao) == earned  # a request is not a redemption until staff approve
