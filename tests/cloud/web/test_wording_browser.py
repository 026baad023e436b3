"""A community's notification wording from the policies page in a real headless Chromium: an
unknown placeholder is shown at the text field with the placeholders the message has, a valid text
is listed beside the shipped words, and 恢复默认 removes it; the community's engineer reads the list
without the forms."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from tests.support.browser import BROWSER_MARKS, login, shot
from tests.support.webapp import MakeUser

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = BROWSER_MARKS


async def test_admin_rewords_a_message(live_server: str, chromium: Browser, make_user: MakeUser,
                                       pool: AsyncConnectionPool[Any]) -> None:
    from playwright.async_api import expect

    admin = await make_user(Role.admin)
    engineer = await make_user(Role.engineer, "lvyuan")
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code, name) VALUES ('lvyuan', '绿苑')")
    page = await login(chromium, live_server, admin)
    await page.goto(f"{live_server}/admin/policies?community=lvyuan")
    await expect(page.locator("#wording")).to_contain_text("本小区使用默认措辞")
    form = page.locator("#wording-form")
    await form.locator("select[name=code]").select_option("resident.assigned")
    await form.locator("select[name=channel]").select_option("sms")
    await form.locator("textarea[name=template]").fill("{butler} 师傅已接单，电话 {phone}")
    await form.locator("button.primary").click()
    await expect(form.locator('[data-error-for="template"]')).to_contain_text(
        "unknown placeholder {phone}; resident.assigned has {butler}, {id}")
    await form.locator("textarea[name=template]").fill("{butler} 师傅已接单（#{id}）")
    await form.locator("button.primary").click()
    row = page.locator("#wording-rows tr[data-code='resident.assigned'][data-channel=sms]")
    await expect(row.locator(".template")).to_have_text("{butler} 师傅已接单（#{id}）", timeout=10_000)
    await expect(row).to_contain_text("工单 #{id} 已派给 {butler}。")  # the shipped words beside it
    await shot(page, "admin-wording")

    reader = await login(chromium, live_server, engineer)
    await reader.goto(f"{live_server}/admin/policies?community=lvyuan")
    await expect(reader.locator("#wording-rows .template")).to_have_text("{butler} 师傅已接单（#{id}）")
    await expect(reader.locator("#wording-form")).to_have_count(0)
    await expect(reader.locator("form.wording-reset")).to_have_count(0)

    await row.locator("form.wording-reset button").click()
    await expect(page.locator("#wording")).to_contain_text("本小区使用默认措辞", timeout=10_000)
