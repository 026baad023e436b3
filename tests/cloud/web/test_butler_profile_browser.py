"""A butler's service profile from the people page in a real headless Chromium (Playwright), as
the community's engineer (a manager, not an admin): a hire date in the future is refused next to
its field, then the hire date and two certificates are saved (one expired), the page shows years of
service and which certificate counts, the audit log has the change, and the butler's own phone page
shows the same profile beside the star rule."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from tests.support.browser import BROWSER_MARKS, login, shot
from tests.support.webapp import MakeUser

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = BROWSER_MARKS


async def test_engineer_keeps_a_butlers_certificates(live_server: str, chromium: Browser, make_user: MakeUser,
                                                     pool: AsyncConnectionPool[Any]) -> None:
    from playwright.async_api import expect

    engineer = await make_user(Role.engineer, "lvyuan")
    butler = await make_user(Role.butler, "lvyuan")
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code, name) VALUES ('lvyuan', '绿苑')")
        await conn.execute("INSERT INTO butlers (name, community, skills, user_id) VALUES ('李管家', 'lvyuan', "
                           "'{elevator}', %s)", (butler.user.id,))
    page = await login(chromium, live_server, engineer)
    await page.goto(f"{live_server}/admin/people?community=lvyuan")
    row = page.locator("#butlers tbody tr[data-name='李管家']")
    await expect(row.locator(".service-profile")).to_contain_text("服务年限未登记")
    await expect(row.locator("form.butler-edit")).to_have_count(0)  # the rest stays the admin's

    await row.locator("summary").click()
    form = row.locator("form.profile-form")
    await form.locator("input[name=hired_on]").fill("2099-01-01")
    certs = form.locator(".cert")
    await certs.nth(0).locator("input[name=name]").fill("电梯安全管理员")
    await certs.nth(0).locator("input[name=number]").fill("TS-A1-3101")
    await certs.nth(0).locator("input[name=issuer]").fill("上海市市场监督管理局")
    await certs.nth(0).locator("input[name=valid_until]").fill("2099-12-31")
    await form.locator("button.primary").click()
    await expect(form.locator('[data-error-for="hired_on"]')).to_contain_text("2099-01-01 is after today")

    await form.locator("input[name=hired_on]").fill("2020-01-01")
    await form.locator("button.primary").click()
    row = page.locator("#butlers tbody tr[data-name='李管家']")
    await expect(row.locator(".service-profile .years")).to_contain_text("服务", timeout=10_000)
    await expect(row.locator(".cert-current")).to_contain_text("电梯安全管理员 · TS-A1-3101 · 上海市市场监督管理局")

    # a second certificate in the blank row the page offers after a save; this one has run out
    await row.locator("summary").click()
    blank = row.locator("form.profile-form .cert").nth(1)
    await blank.locator("input[name=name]").fill("低压电工作业证")
    await blank.locator("input[name=valid_until]").fill("2001-01-01")
    await row.locator("form.profile-form button.primary").click()
    row = page.locator("#butlers tbody tr[data-name='李管家']")
    await expect(row.locator(".cert-expired")).to_contain_text("已过期，不计入星级", timeout=10_000)
    await expect(row.locator(".service-profile .counted")).to_have_text("1 个有效证书计入星级")
    await shot(page, "admin-butler-profile")

    async with pool.connection() as conn:
        cur = await conn.execute("SELECT name, valid_until::text FROM butler_certifications ORDER BY position")
        assert await cur.fetchall() == [("电梯安全管理员", "2099-12-31"), ("低压电工作业证", "2001-01-01")]
        cur = await conn.execute("SELECT count(*) FROM admin_audit WHERE action = 'butler.profile_updated'")
        assert await cur.fetchone() == (2,)

    phone = await login(chromium, live_server, butler, mobile=True, width=390, height=844)
    await phone.goto(f"{live_server}/inbox")
    await expect(phone.locator("#star .service-profile")).to_contain_text("电梯安全管理员")
    await expect(phone.locator("#star .service-profile .years")).to_contain_text("服务")
    await shot(phone, "inbox-butler-profile")
