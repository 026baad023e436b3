"""The property staff's operations pages in a real Chromium (Playwright) against the real app on
uvicorn, a real PostgreSQL and a pinned clock (Friday 2027-01-29 09:00 in Shanghai): the plan list
with each lift's next due date and the compliance flag, the second (staff) confirmation drawn with
the pointer, the plan's history with checklist and both signatures, an inspection route's coverage
with a missed checkpoint and its printable QR sheet, and the contract page (create a contract, its
terms and the holder's measured compliance). Skipped with a reason when Chromium or Playwright
is not installed."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.demo_operations import small_png
from cloud.ops.inspections import repo as inspections
from cloud.ops.inspections.rounds import Scan, record_scan
from cloud.ops.maintenance import repo
from cloud.ops.maintenance.completion import Answer, submit
from cloud.ops.maintenance.scheduler import run_once
from cloud.ops.maintenance.templates import shipped
from cloud.ops.model.actors import Actor
from cloud.ops.model.policy import default_policy
from cloud.ops.workorders import repo as wo_repo
from guanjia.core.clock import ManualClock
from guanjia.core.settings import Settings
from tests.support.browser import BROWSER_MARKS, draw_signature, login, shot
from tests.support.webapp import MakeUser, serving
from tests.support.workorders import add_butler

SH = ZoneInfo("Asia/Shanghai")
NOW = datetime(2027, 1, 29, 9, 0, tzinfo=SH).astimezone(UTC)
CLOCK = ManualClock(NOW)
SIGNATURE = "data:image/png;base64," + base64.b64encode(small_png(96, 32, 30)).decode()

try:
    from playwright.async_api import Browser, expect
except ImportError:  # pragma: no cover - dev extra not installed
    expect = None  # type: ignore[assignment]

pytestmark = BROWSER_MARKS


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], settings: Settings) -> Iterator[FastAPI]:
    from cloud.app import create_app

    CLOCK.set(NOW)
    with serving(create_app(settings, pool, clock=CLOCK)) as application:
        yield application


async def _seed(pool: AsyncConnectionPool[Any], run_dir: Path) -> dict[str, Any]:
    """Two lifts under half-monthly plans: lift-1's first maintenance due today, done yesterday
    and submitted by the maintainer (waiting for the staff); lift-2 never maintained since its
    plan started 20 days ago (non-compliant). A 4-hourly route whose car park was missed this morning."""
    policy, catalog = default_policy(), shipped()
    async with pool.connection() as conn:
        cur = await conn.execute("INSERT INTO communities (code, timezone) VALUES ('cA', 'Asia/Shanghai') RETURNING id")
        cid = (await cur.fetchone() or (0,))[0]
        await conn.execute("INSERT INTO devices (community_id, code, kind) VALUES (%s, 'lift-1', 'elevator'),"
                           " (%s, 'lift-2', 'elevator')", (cid, cid))
        worker = await add_butler(conn, "张师傅", community="cA")
        me = Actor.butler(worker)
        plan = await repo.create_plan(conn, catalog, community="cA", scope="device", target="lift-1",
                                      template="lift.half_monthly", starts_on=date(2027, 1, 29),
                                      now=NOW - timedelta(days=20), assignee_id=worker)
        await repo.create_plan(conn, catalog, community="cA", scope="device", target="lift-2",
                               template="lift.half_monthly", starts_on=date(2027, 1, 9),
                               now=NOW - timedelta(days=20), assignee_id=worker)
        photo = "/photos/cA/" + small_png().hex()[:8]  # a reference only: the page links it
        answers = [Answer(i.id, ok=True if i.check == "pass_fail" else None,
                          value=((i.expected.min or 0) + (i.expected.max or 0)) / 2 if i.expected else None,
                          photo=photo if i.photo else None) for i in catalog.get("lift.half_monthly").items]
        (wo_id,) = [w for w in (await run_once(conn, policy, catalog, NOW - timedelta(days=2))).opened
                    if (await wo_repo.get(conn, w))["device"] == "lift-1"]
        for action in ("accept", "arrive"):
            await wo_repo.transition(conn, policy, wo_id, action, me, NOW - timedelta(days=1))
        await submit(conn, policy, catalog, wo_id, me, answers, SIGNATURE, NOW - timedelta(hours=20))
        route = await inspections.create_route(
            conn, community="cA", name="公共区域巡查", every_hours=4, grace_minutes=30, now=NOW - timedelta(days=1),
            checkpoints=[inspections.NewCheckpoint("大堂"), inspections.NewCheckpoint("地库")])
        lobby, _garage = await inspections.checkpoints(conn, route.id)
        for hours in (0, 4):  # 00:00–04:00 and 04:00–08:00 local: the lobby visited, the car park not
            await record_scan(conn, policy, "cA", Scan(lobby.code), me,
                              datetime(2027, 1, 29, hours + 1, 0, tzinfo=SH).astimezone(UTC))
        cur = await conn.execute("INSERT INTO contractors (name, created_at) VALUES ('迅达电梯', %s) RETURNING id",
                                 (NOW,))
        company = (await cur.fetchone() or (0,))[0]
    return {"plan": plan.id, "wo": wo_id, "route": route.id, "company": company, "garage": _garage.code}


async def test_operations_pages(live_server: str, chromium: Browser, pool: AsyncConnectionPool[Any],
                                make_user: MakeUser, settings: Settings) -> None:
    server = live_server
    staff = await make_user(Role.engineer, "cA", name="eng-ops")
    seeded = await _seed(pool, settings.run_dir)
    page = await login(chromium, server, staff)
    # the plan list: next due per lift (local dates), lift-2 flagged non-compliant
    await page.goto(f"{server}/ops/plans?community=cA")
    lift1 = page.locator("tr.plan-device[data-device='lift-1']")
    lift2 = page.locator("tr.plan-device[data-device='lift-2']")
    await expect(lift1.locator(".next-due")).to_contain_text("2027-01-29")
    await expect(lift1.locator(".compliance")).to_contain_text("合规")
    await expect(lift2.locator(".compliance")).to_contain_text("超过 15 天未维保")
    await shot(page, "ops-plans")

    # the second confirmation: the staff's own signature drawn with the pointer
    await page.goto(f"{server}/ops/plans/{seeded['plan']}")
    await page.click(f"#order-{seeded['wo']} a.primary")
    await expect(page.locator("#results li")).to_have_count(9)
    await page.click("#confirm-submit")  # not signed: refused with the domain's message
    await expect(page.locator("body")).to_contain_text("signature")
    await page.goto(f"{server}/ops/confirm/{seeded['wo']}")
    await draw_signature(page)
    await page.click("#confirm-submit")
    await expect(page.locator("#confirmed")).to_contain_text("eng-ops")

    # the plan's history: checklist with readings, both signatures, local times
    await page.goto(f"{server}/ops/plans/{seeded['plan']}")
    order = page.locator(f"#order-{seeded['wo']}")
    await expect(order.locator(".state")).to_have_text("已完成")
    await expect(order.locator("img.signature")).to_have_count(2)
    await expect(order.locator(".reading").first).to_contain_text("mm")
    await expect(order).to_contain_text("2027-01-28 13:00")  # submitted 20 h before 09:00 local
    await shot(page, "ops-plan-history")

    # the route: today's missed car park in two closed slots, and the QR sheet
    await page.goto(f"{server}/ops/routes/{seeded['route']}")
    today = page.locator("tr.coverage-day[data-day='2027-01-29']")
    await expect(today).to_contain_text("2/4")
    await expect(today.locator(".missed .chip")).to_have_count(2)
    await expect(today.locator(".missed")).to_contain_text(seeded["garage"])
    await page.click("#qr-sheet-link")
    labels = page.locator("#qr-sheet figure.qr-label")
    await expect(labels).to_have_count(2)
    assert await labels.first.locator("img").evaluate("i => i.complete && i.naturalWidth > 0")
    await expect(page.locator("#qr-sheet")).to_contain_text(seeded["garage"])

    # the contract page: create one with the form, see its terms and measured compliance
    await page.goto(f"{server}/ops/contracts?community=cA")
    await page.select_option("select[name=skill]", "elevator")
    await page.check("#contract-form input[name=work][value=rescue]")
    await page.fill("#contract-form input[name=on_site_within_min]", "30")
    await page.fill("#contract-form input[name=starts_on]", "2027-01-01")
    await page.fill("#contract-form input[name=reference]", "WB-2027-01")
    await page.click("#contract-form button.primary")
    card = page.locator("article.contract")
    await expect(card).to_have_count(1)
    await expect(card).to_contain_text("迅达电梯")
    await expect(card.locator(".terms")).to_contain_text("30")
    await expect(card).to_contain_text("紧急救援")
    await expect(card.locator(".measured")).to_contain_text("0 单")
    await shot(page, "ops-contracts")

    async with pool.connection() as conn:
        order_row = await repo.order_for_work_order(conn, seeded["wo"])
        cur = await conn.execute("SELECT work, on_site_within FROM contractor_contracts WHERE community = 'cA'")
        contract = await cur.fetchone()
    assert order_row["state"] == "completed"
    assert order_row["staff_signature"].startswith("data:image/png;base64,")
    assert contract == (["maintenance", "rescue"], timedelta(minutes=30))
