"""Browser tests: the pages in a real headless Chromium (Debian ``chromium``) driven by
Playwright, against the real app served by uvicorn on a free port and a real PostgreSQL.

* a butler logs in, a new work order arrives live (SSE) with its cue, and they accept and
  resolve it with one tap each;
* an engineer logs in and sees a 30-day chart render with data;
* a butler of community A cannot open a work order of community B;
* a resident reports a fault on the phone page and follows it live: assigned (with the butler's
  name), on the way, on site, resolved — each step appears without a reload, in Chinese.

Screenshots of the main pages go to ``test-artifacts/`` (git-ignored). Skipped with a reason
when Chromium or Playwright is not installed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from bench.webdata import World, build_world
from cloud.auth.roles import Role
from guanjia.core.ports import free_port
from tests.support.webapp import Login, MakeUser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[3] / "test-artifacts"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]

try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:  # pragma: no cover - dev extra not installed
    async_playwright = None  # type: ignore[assignment]

pytestmark = [
    pytest.mark.skipif(async_playwright is None, reason="playwright is not installed (pip install -e '.[dev]')"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="Debian chromium is not installed (apt-get install chromium); Playwright cannot "
                              "download browsers here"),
    pytest.mark.slow,
]


@pytest.fixture
async def server(app: FastAPI) -> AsyncIterator[str]:
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off",
                            timeout_graceful_shutdown=1)
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    for _ in range(200):
        if srv.started:
            break
        await asyncio.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        srv.should_exit = True
        await asyncio.wait_for(task, 10)
        for name in ("inbox_hub", "resident_hub"):
            hub = getattr(app.state, name, None)
            if hub is not None:
                hub.stop_detached()


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            yield b
        finally:
            await b.close()


@pytest.fixture
async def people(make_user: MakeUser) -> dict[str, Login]:
    return {
        "engineer": await make_user(Role.engineer, "cA"),
        "butler": await make_user(Role.butler, "cA"),
        "butler_b": await make_user(Role.butler, "cB"),
        "resident": await make_user(Role.resident, "cA"),
    }


@pytest.fixture
async def world(pool: AsyncConnectionPool[Any], people: dict[str, Login]) -> World:
    async with pool.connection() as conn:
        return await build_world(conn, ["cA", "cB"], devices_per_community=12, days=31, minute_days=1,
                                 butler_users={"cA": [people["butler"].user.id], "cB": [people["butler_b"].user.id]})


async def login(browser: Browser, base: str, who: Login) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = await context.new_page()
    await page.goto(f"{base}/login")
    await page.fill("input[name=username]", who.user.username)
    await page.fill("input[name=password]", who.password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")
    return page


async def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def test_butler_receives_accepts_and_resolves_live(server: str, browser: Browser, world: World,
                                                         people: dict[str, Login],
                                                         pool: AsyncConnectionPool[Any]) -> None:
    from cloud.ops.model.actors import Actor
    from cloud.ops.model.policy import default_policy as policy
    from cloud.ops.workorders import repo

    page = await login(browser, server, people["butler"])
    assert page.url.endswith("/inbox")
    await expect(page.locator("#inbox-live.on")).to_be_visible(timeout=15_000)
    await shot(page, "inbox-before")
    butler_id = world.butler_ids["cA"][0]
    now = dt.datetime.now(dt.UTC)
    async with pool.connection() as conn:
        wo = await repo.open_order(conn, policy(), repo.NewOrder(
            community="cA", title="电梯困人 browser-test", origin="staff", priority="P0", building="b1",
            device=None, skill="elevator", description="trapped passenger, car 2"), now, Actor.system("test"))
        assert wo is not None
        if wo["assignee_id"] != butler_id:
            wo = await repo.transition(conn, policy(), wo["id"], "reassign" if wo["state"] == "assigned" else "assign",
                                       Actor.system("test"), now, assignee_id=butler_id)
    card = page.locator(f"#wo-{wo['id']}")
    await expect(card).to_be_visible(timeout=15_000)  # arrived live: no reload by the test
    await expect(page.locator("#toast")).to_be_visible()
    await shot(page, "inbox-new-order")
    await card.locator(".act-accept").click()
    await expect(page.locator(f"#wo-{wo['id']}[data-state=accepted]")).to_be_visible(timeout=10_000)
    await page.locator(f"#wo-{wo['id']} .act-arrive").click()
    await expect(page.locator(f"#wo-{wo['id']}[data-state=on_site]")).to_be_visible(timeout=10_000)
    await page.locator(f"#wo-{wo['id']} input[name=note]").fill("released the passenger, reset the door lock")
    await page.locator(f"#wo-{wo['id']} .act-resolve").click()
    await expect(page.locator(f"#wo-{wo['id']}")).to_have_count(0, timeout=10_000)
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT state FROM work_orders WHERE id = %s", (wo["id"],))
        row = await cur.fetchone()
        cur = await conn.execute("SELECT note FROM work_order_trail WHERE work_order_id = %s AND action = 'resolve'",
                                 (wo["id"],))
        notes = [r[0] for r in await cur.fetchall()]
    assert row is not None
    assert row[0] == "resolved"
    assert notes == ["released the passenger, reset the door lock"]


async def test_engineer_sees_chart_with_data(server: str, browser: Browser, world: World,
                                             people: dict[str, Login]) -> None:
    page = await login(browser, server, people["engineer"])
    assert page.url.endswith("/fleet")
    await expect(page.locator("#fleet-table tbody tr")).to_have_count(12)
    await shot(page, "fleet")
    device = world.device_ids["cA"][0]
    await page.goto(f"{server}/devices/{device}")
    await page.select_option("#chart-range", "30d")
    chart = page.locator("#chart[data-ready='1']")
    await expect(chart).to_be_visible(timeout=15_000)
    assert int(await chart.get_attribute("data-points") or 0) >= 24 * 29
    await expect(page.locator("#chart canvas")).to_be_visible()
    # any range: pick two dates
    await page.select_option("#chart-range", "custom")
    start = (dt.datetime.now(dt.UTC) - dt.timedelta(days=10)).date().isoformat()
    end = (dt.datetime.now(dt.UTC) - dt.timedelta(days=3)).date().isoformat()
    await page.fill("#chart-start", start)
    await page.fill("#chart-end", end)
    await expect(chart).to_be_visible(timeout=15_000)
    assert 24 * 7 <= int(await chart.get_attribute("data-points") or 0) <= 24 * 8 + 1
    await expect(page.locator("#health tbody tr")).not_to_have_count(0)
    await expect(page.locator("#live-values dd").first).to_be_visible(timeout=15_000)  # live values over SSE
    await shot(page, "device")
    await page.goto(f"{server}/gateways/{world.gateway_ids['cA']}")
    await shot(page, "gateway")
    await page.goto(f"{server}/manager")
    await expect(page.locator("#kpis")).to_be_visible()
    await shot(page, "manager")
    resident = await login(browser, server, people["resident"])
    await shot(resident, "resident")


async def test_butler_of_a_cannot_open_work_order_of_b(server: str, browser: Browser, world: World,
                                                       people: dict[str, Login]) -> None:
    page = await login(browser, server, people["butler"])
    foreign = world.work_order_ids["cB"][0]
    resp = await page.goto(f"{server}/inbox/{foreign}/trail")
    assert resp is not None
    assert resp.status == 404
    api = await page.goto(f"{server}/api/v1/work-orders/{foreign}")
    assert api is not None
    assert api.status == 404
    await page.goto(f"{server}/inbox")
    assert await page.locator(f"#wo-{foreign}").count() == 0


async def test_resident_follows_their_report_live(server: str, browser: Browser, world: World,
                                                  people: dict[str, Login], pool: AsyncConnectionPool[Any]) -> None:
    from cloud.ops.model.actors import Actor
    from cloud.ops.model.policy import default_policy as policy
    from cloud.ops.workorders import repo

    context = await browser.new_context(viewport={"width": 390, "height": 844}, locale="zh-CN", is_mobile=True)
    page = await context.new_page()
    await page.goto(f"{server}/login")
    await page.fill("input[name=username]", people["resident"].user.username)
    await page.fill("input[name=password]", people["resident"].password)
    await page.click("button[type=submit]")
    await page.wait_for_url("**/resident")
    await page.fill("#report-form textarea[name=text]", "3号楼楼道灯不亮 browser-test")
    await page.click("#report-form button.primary")
    await page.wait_for_url("**/resident?sent=*")
    wo_id = int(page.url.rsplit("=", 1)[1])
    updates = page.locator("#updates li.update")
    await expect(updates.first).to_contain_text(f"工单 #{wo_id} 已派给")  # newest first
    await expect(page.locator(f"#updates li.update[data-wo='{wo_id}']")).to_have_count(2)
    await expect(page.locator("#resident-live.on")).to_be_visible(timeout=15_000)
    async with pool.connection() as conn:
        wo = await repo.get(conn, wo_id)
        cur = await conn.execute("SELECT name FROM butlers WHERE id = %s", (wo["assignee_id"],))
        row = await cur.fetchone()
    assert row is not None
    butler, name = Actor.butler(wo["assignee_id"], row[0]), row[0]
    expected = {"depart": f"{name} 正在赶来", "arrive": f"{name} 已到达现场", "resolve": f"工单 #{wo_id} 已处理完成"}
    async with pool.connection() as conn:
        await repo.transition(conn, policy(), wo_id, "accept", butler, dt.datetime.now(dt.UTC))
    for action, text in expected.items():
        async with pool.connection() as conn:
            await repo.transition(conn, policy(), wo_id, action, butler, dt.datetime.now(dt.UTC))
        await expect(updates.first).to_contain_text(text, timeout=10_000)  # live: no reload by the test
    await expect(page.locator(f"#wo-{wo_id} .state")).to_have_text("已完成")
    await expect(page.locator(f"#updates li.update[data-wo='{wo_id}']")).to_have_count(5)
    await shot(page, "resident-live")
    await context.close()
