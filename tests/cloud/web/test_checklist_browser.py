"""The maintainer's checklist page on a phone-sized real Chromium (Playwright), against the real app
on uvicorn and a real PostgreSQL: every item answered, photos attached, a signature drawn with the
pointer → the planned order is resolved with its checklist; without a signature it is refused.
Skipped with a reason when Chromium or Playwright is not installed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.demo_operations import small_png as png
from cloud.ops.maintenance import repo
from cloud.ops.maintenance.scheduler import run_once
from cloud.ops.maintenance.templates import shipped
from cloud.ops.model.actors import Actor
from cloud.ops.model.policy import default_policy
from cloud.ops.workorders import repo as wo_repo
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


async def test_maintainer_fills_checklist_photos_and_signs(server: str, pool: AsyncConnectionPool[Any],
                                                          make_user: MakeUser, tmp_path: Path) -> None:
    me = await make_user(Role.butler, "cA")
    policy, catalog = default_policy(), shipped()
    now = dt.datetime.now(dt.UTC)
    async with pool.connection() as conn:
        cur = await conn.execute("INSERT INTO communities (code) VALUES ('cA') RETURNING id")
        cid = (await cur.fetchone() or (0,))[0]
        await conn.execute("INSERT INTO devices (community_id, code, kind) VALUES (%s, 'lift-1', 'elevator')", (cid,))
        butler = await add_butler(conn, me.user.username, community="cA")
        await conn.execute("UPDATE butlers SET user_id = %s WHERE id = %s", (me.user.id, butler))
        await repo.create_plan(conn, catalog, community="cA", scope="device", target="lift-1",
                               template="lift.half_monthly", starts_on=now.date(), now=now, assignee_id=butler)
        (wo_id,) = (await run_once(conn, policy, catalog, now)).opened
        for action in ("accept", "arrive"):
            await wo_repo.transition(conn, policy, wo_id, action, Actor.butler(butler), now)
    photo = tmp_path / "brake.png"
    photo.write_bytes(png())

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = await login(browser, server, me, width=390, height=844)
            await page.goto(f"{server}/maintenance/{wo_id}")
            await expect(page.locator("h1")).to_have_text("电梯半月维保")

            async def fill() -> None:
                for item in catalog.get("lift.half_monthly").items:
                    if item.check == "reading":
                        await page.fill(f"input[name=value_{item.id}]", "0.3" if item.unit == "mm" else "2")
                    else:
                        await page.check(f"input[name=ok_{item.id}][value='1']")
                    if item.photo:
                        await page.set_input_files(f"input[name=photo_{item.id}]", str(photo))

            await fill()
            await page.click("#checklist-submit")  # not signed
            await expect(page.locator("body")).to_contain_text("signature")
            await page.goto(f"{server}/maintenance/{wo_id}")
            await fill()
            box = await page.locator("#signature-pad").bounding_box()
            assert box is not None
            await page.mouse.move(box["x"] + 20, box["y"] + 60)
            await page.mouse.down()
            for step in range(1, 12):
                await page.mouse.move(box["x"] + 20 + step * 22, box["y"] + 60 + (15 if step % 2 else -15))
            await page.mouse.up()
            await page.click("#checklist-submit")
            await expect(page.locator("#submitted")).to_contain_text("等待物业确认")
            ARTIFACTS.mkdir(exist_ok=True)
            await page.screenshot(path=str(ARTIFACTS / "checklist-phone.png"), full_page=True)
        finally:
            await browser.close()

    async with pool.connection() as conn:
        order = await repo.order_for_work_order(conn, wo_id)
        wo = await wo_repo.get(conn, wo_id)
    assert order["state"] == "submitted"
    assert order["maintainer_signature"].startswith("data:image/png;base64,")
    assert len(order["checklist"]) == 9
    assert all(c["ok"] for c in order["checklist"])
    assert wo["state"] == "resolved"
    assert len(wo["photos"]) == 2
