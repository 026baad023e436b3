"""The day-calendar admin page in a real headless Chromium (Playwright) against the real app on
uvicorn and a real PostgreSQL: an admin adds a community's closure day (a note too long is shown at
its field first) and removes it again (issue 15)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from tests.support.browser import BROWSER_MARKS, login
from tests.support.webapp import MakeUser

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = BROWSER_MARKS


async def test_admin_adds_and_removes_a_closure_day_in_the_browser(live_server: str, chromium: Browser,
                                                                   make_user: MakeUser,
                                                                   pool: AsyncConnectionPool[Any]) -> None:
    from playwright.async_api import expect

    admin = await make_user(Role.admin)
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code, name) VALUES ('lvyuan', '绿苑')")
    page = await login(chromium, live_server, admin)
    await page.goto(f"{live_server}/admin/calendar?community=lvyuan&year=2026")
    await expect(page.locator("h1")).to_contain_text("节假日")
    form = page.locator("#calendar-form")
    await form.locator("input[name=day]").fill("2026-03-10")
    await form.locator("input[name=note]").evaluate("el => el.removeAttribute('maxlength')")
    await form.locator("input[name=note]").fill("x" * 201)
    await form.locator("button.primary").click()
    await expect(form.locator('[data-error-for="note"]')).to_contain_text("太长")
    await form.locator("input[name=note]").fill("小区停水检修")
    await form.locator("button.primary").click()
    row = page.locator('#calendar-days tr[data-day="2026-03-10"]')
    await expect(row).to_contain_text("小区停水检修", timeout=10_000)
    await expect(row).to_contain_text("本小区")
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT kind, note FROM community_calendar_days WHERE community = 'lvyuan'")
        assert await cur.fetchall() == [("holiday", "小区停水检修")]
    await row.locator("form.calendar-remove button").click()
    await expect(page.locator('#calendar-days tr[data-day="2026-03-10"]')).to_have_count(0, timeout=10_000)
