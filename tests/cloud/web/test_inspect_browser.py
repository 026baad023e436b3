"""The butler's inspection page on a phone-sized real Chromium (Playwright), against the real app on
uvicorn and a real PostgreSQL: enter a checkpoint's code, record a reading; tick "finding" and a
work order is opened in one tap; another community's code is refused. Skipped with a reason when
Chromium or Playwright is not installed (as the other browser tests)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.ops.inspections import repo
from tests.support.browser import ARGS, ARTIFACTS, BROWSER_MARKS, CHROMIUM, login
from tests.support.webapp import MakeUser
from tests.support.workorders import add_butler

try:
    from playwright.async_api import async_playwright, expect
except ImportError:  # pragma: no cover - dev extra not installed
    async_playwright = None  # type: ignore[assignment]

pytestmark = BROWSER_MARKS


@pytest.fixture
def server(live_server: str) -> str:
    """The app on uvicorn (``tests/plugins/browser.py``)."""
    return live_server


async def test_butler_records_a_visit_and_a_finding_on_the_phone(server: str, pool: AsyncConnectionPool[Any],
                                                                 make_user: MakeUser) -> None:
    me = await make_user(Role.butler, "cA")
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code) VALUES ('cA'), ('cB')")
        butler = await add_butler(conn, me.user.username, community="cA")
        await conn.execute("UPDATE butlers SET user_id = %s WHERE id = %s", (me.user.id, butler))
        now = dt.datetime.now(dt.UTC)
        route = await repo.create_route(conn, community="cA", name="地库巡查", every_hours=4, grace_minutes=30, now=now,
                                        checkpoints=[repo.NewCheckpoint("水泵房", reading_unit="MPa"),
                                                     repo.NewCheckpoint("配电室")])
        other = await repo.create_route(conn, community="cB", name="B", every_hours=12, grace_minutes=0, now=now,
                                        checkpoints=[repo.NewCheckpoint("门岗")])
        pump, power = await repo.checkpoints(conn, route.id)
        foreign = (await repo.checkpoints(conn, other.id))[0]

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = await login(browser, server, me, width=390, height=844, mobile=True)
            await page.goto(f"{server}/inspect")
            await expect(page.locator("h1")).to_have_text("巡检")
            await expect(page.locator("body")).to_contain_text("地库巡查")
            assert "门岗" not in await page.content()  # another community's route is not listed

            await page.fill("#code", pump.code.lower())  # typed from the label, any case
            await page.fill("input[name=reading]", "0.42")
            await page.click("#scan-submit")
            await expect(page.locator("#scanned")).to_contain_text(f"巡检点 {pump.code} 已记录")

            await page.fill("#code", power.code)
            await page.fill("textarea[name=note]", "配电柜异味 burning smell")
            await page.check("#finding")
            await page.click("#scan-submit")
            await expect(page.locator("#scanned")).to_contain_text("已生成工单 #")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "inspect-phone.png"), full_page=True)

            await page.fill("#code", foreign.code)
            await page.click("#scan-submit")
            await expect(page.locator("body")).to_contain_text("本小区没有该巡检点")
        finally:
            await browser.close()

    async with pool.connection() as conn:
        cur = await conn.execute("SELECT p.code, s.method, s.reading, s.work_order_id IS NOT NULL"
                                 " FROM inspection_scans s JOIN inspection_checkpoints p ON p.id = s.checkpoint_id"
                                 " ORDER BY s.id")
        rows = await cur.fetchall()
        cur = await conn.execute("SELECT origin, description FROM work_orders")
        orders = await cur.fetchall()
    assert rows == [(pump.code, "code", 0.42, False), (power.code, "code", None, True)]
    assert orders == [("inspection", "配电柜异味 burning smell")]
