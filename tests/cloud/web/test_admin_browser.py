"""The self-service admin pages in a real headless Chromium (Playwright) against the real app on
uvicorn and a real PostgreSQL, in Chinese (the default):

* an admin adds a butler with skills (a first try without name or skills shows the errors next to
  those fields), then edits the butler's roster;
* changes a community's SLA (a bad duration is shown at its cell) and a new order of that community
  gets the new deadline and is routed to the butler on duty by the new roster;
* imports a CSV with row errors: every error is listed with its line, and nothing is imported;
* adds a building with its floors (a floor count of 0 is shown at its field first).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.ops.model.actors import Actor
from cloud.ops.workorders import repo
from tests.support.browser import BROWSER_MARKS, login, shot
from tests.support.webapp import MakeUser

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = BROWSER_MARKS

MONDAY_10_CST = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)  # a Monday, 10:00 in Asia/Shanghai


async def test_butler_roster_sla_and_csv_from_the_pages(live_server: str, chromium: Browser, make_user: MakeUser,
                                                        pool: AsyncConnectionPool[Any], app: FastAPI,
                                                        tmp_path: Path) -> None:
    from playwright.async_api import expect

    admin = await make_user(Role.admin)
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code, name) VALUES ('lvyuan', '绿苑'), ('qingyuan', '青园')")
        await conn.execute("INSERT INTO buildings (community_id, code, name) SELECT id, b, b FROM communities,"
                           " unnest(array['b1', 'b2']) AS b WHERE code = 'lvyuan'")
    page = await login(chromium, live_server, admin)

    # --- a butler with skills -------------------------------------------------------------------
    await page.goto(f"{live_server}/admin/people?community=lvyuan")
    await expect(page.locator("h1")).to_contain_text("管家与维保单位")
    form = page.locator("#butler-form")
    await form.locator("button.primary").click()
    await expect(form.locator('[data-error-for="name"]')).not_to_be_empty()
    await expect(form.locator('[data-error-for="skills"]')).to_contain_text("未选择")  # worded in the page's language
    await form.locator("input[name=name]").fill("王管家")
    await form.locator("input[name=phone]").fill("13800005555")
    await form.locator("input[name=skills][value=water]").check()
    await form.locator("input[name=skills][value=general]").check()
    await form.locator("input[name=buildings][value=b2]").check()
    await form.locator("input[name=star_level]").fill("4")
    await form.locator("button.primary").click()
    row = page.locator("#butlers tbody tr[data-name='王管家']")
    await expect(row).to_be_visible(timeout=10_000)
    await expect(row.locator("[data-skill=water]")).to_have_text("给排水")
    await expect(row.locator("[data-skill=general]")).to_be_visible()
    await expect(row.locator(".shifts")).to_contain_text("全天在岗")
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT buildings, star_level FROM butlers WHERE name = '王管家'")
        assert await cur.fetchone() == (["b2"], 4)

    # --- its roster ---------------------------------------------------------------------------------
    await row.locator("summary").click()
    roster = row.locator("form.roster-edit")
    monday = roster.locator(".shift[data-weekday='0']")
    await monday.locator("input[name=on]").check()
    await monday.locator("input[name=starts]").fill("09:00")
    await monday.locator("input[name=ends]").fill("18:00")
    await roster.locator("button.primary").click()
    row = page.locator("#butlers tbody tr[data-name='王管家']")
    await expect(row.locator("[data-shift='0 09:00-18:00']")).to_have_text("周一 09:00–18:00", timeout=10_000)
    await shot(page, "admin-people")

    # --- the SLA of the community ---------------------------------------------------------------
    await page.goto(f"{live_server}/admin/policies?community=lvyuan")
    p2 = page.locator("#sla tr[data-priority=P2]")
    await p2.locator("input[name='sla.P2.respond']").fill("soon")
    await page.locator("#policy-form button.primary").click()
    await expect(p2.locator("[data-error-for='sla.P2.respond']")).to_contain_text("值无效: 'soon' is not a duration")
    await p2.locator("input[name='sla.P2.respond']").fill("30m")
    await page.locator("#policy-form button.primary").click()
    await expect(page.locator("#sla tr[data-priority=P2].overridden")).to_be_visible(timeout=10_000)
    await expect(page.locator("input[name='sla.P2.respond']")).to_have_value("30m")
    await shot(page, "admin-policies")

    async with pool.connection() as conn:
        wo = await repo.open_order(conn, app.state.policy, repo.NewOrder(
            community="lvyuan", title="二次供水泵房漏水", origin="staff", priority="P2", skill="water", building="b2"),
            MONDAY_10_CST, Actor.system("test"))
        cur = await conn.execute("SELECT id FROM butlers WHERE name = '王管家'")
        butler_id = (await cur.fetchone() or (0,))[0]
    assert wo is not None
    assert wo["respond_due"] - MONDAY_10_CST == dt.timedelta(minutes=30)
    assert wo["on_site_due"] - MONDAY_10_CST == dt.timedelta(hours=24)  # unchanged clocks stay the default's
    assert wo["assignee_id"] == butler_id  # on duty on Monday 10:00 by the new roster

    # --- a CSV import with row errors: listed by line, nothing imported ----------------------------
    sheet = tmp_path / "devices.csv"
    sheet.write_text("community,code,name,kind,profile,gateway,building,floor,lat,lon\n"
                     "lvyuan,b1-pump-1,1号泵,pump,,,,,,\n"
                     "lvyuan,b1-lift-1,1号梯,toaster,,,,,,\n"
                     "nowhere,b2-pump-1,,pump,,,,,,\n", encoding="utf-8")
    await page.goto(f"{live_server}/admin/devices")
    await page.locator("#csv-import input[type=file]").set_input_files(str(sheet))
    await page.locator("#csv-import button.primary").click()
    errors = page.locator("#csv-errors tbody tr")
    await expect(errors).to_have_count(2, timeout=10_000)
    await expect(errors.nth(0).locator("td").nth(0)).to_have_text("3")
    await expect(errors.nth(0).locator("td").nth(1)).to_have_text("kind")
    await expect(errors.nth(1).locator("td").nth(0)).to_have_text("4")
    await expect(page.locator("#csv-failed")).to_contain_text("未导入任何设备")
    await shot(page, "admin-devices-errors")
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM devices")
        assert (await cur.fetchone() or (1,))[0] == 0

    # --- a building with its floors on the estate page -------------------------------------------
    await page.goto(f"{live_server}/admin/estate?community=lvyuan")
    building = page.locator("#building-form")
    await building.locator("input[name=code]").fill("b3")
    await building.locator("input[name=floors]").fill("0")
    await building.locator("button.primary").click()
    await expect(building.locator('[data-error-for="floors"]')).to_contain_text("小于允许的最小值")
    await building.locator("input[name=floors]").fill("18")
    await building.locator("input[name=basement_floors]").fill("2")
    await building.locator("button.primary").click()
    await expect(page.locator("#buildings tr[data-code=b3] td").nth(2)).to_have_text("18", timeout=10_000)

    audit = await page.goto(f"{live_server}/admin/audit")
    assert audit is not None
    body = await page.locator("#audit").inner_text()
    assert all(word in body for word in ("新增管家", "修改排班", "修改时限与通知策略"))
