"""The manager's report page in a real Chromium (Playwright) against the real app on uvicorn and a
real PostgreSQL, on a pinned clock: January's monthly report of one community with its charts and
tables, a table downloaded as CSV, the PDF downloaded, English, and the company page. Skipped with
a reason when Chromium or Playwright is not installed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
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
from tests.support.reports import hourly_energy, meter_baseline
from tests.support.webapp import MakeUser, serving

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = BROWSER_MARKS
SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(month: int, day: int, hour: int) -> datetime:
    return datetime(2027, month, day, hour, tzinfo=SHANGHAI).astimezone(UTC)


async def _read(download: Any) -> bytes:
    """The downloaded file's bytes (read off the event loop)."""
    return await asyncio.to_thread(Path(await download.path()).read_bytes)


@pytest.fixture
def app(pool: AsyncConnectionPool[Any], settings: Settings) -> Iterator[FastAPI]:
    from cloud.app import create_app

    with serving(create_app(settings, pool, clock=ManualClock(local(2, 2, 9)))) as application:
        yield application


async def test_monthly_report_page_csv_and_pdf(live_server: str, chromium: Browser, pool: AsyncConnectionPool[Any],
                                               make_user: MakeUser) -> None:
    from playwright.async_api import expect

    me = await make_user(Role.engineer, "ca")
    async with pool.connection() as conn:
        await conn.execute("INSERT INTO communities (code) VALUES ('ca'), ('cb')")
        cur = await conn.execute("INSERT INTO buildings (community_id, code) SELECT id, 'b1' FROM communities"
                                 " WHERE code = 'ca' RETURNING community_id, id")
        community, building = (await cur.fetchone() or (0, 0))
        cur = await conn.execute("INSERT INTO devices (community_id, building_id, code, kind) VALUES (%s, %s, 'm-1',"
                                 " 'meter') RETURNING id", (community, building))
        meter = (await cur.fetchone() or (0,))[0]
        await hourly_energy(conn, meter, local(1, 31, 0), 24)
        await meter_baseline(conn, meter, 1.25, local(1, 1, 0))
        await repo.set_target(conn, Target("ca", None, "month", Decimal("20"), date(2027, 1, 1)), local(1, 1, 0))
        await conn.execute(
            "INSERT INTO work_orders (community, origin, title, priority, state, respond_due, on_site_due, resolve_due,"
            " created_at, updated_at, accepted_at) VALUES ('ca', 'staff', '漏水', 'P2', 'accepted', %(t)s, %(t)s,"
            " %(t)s, %(t)s, %(t)s, %(t)s)", {"t": local(1, 10, 10)})

    page = await login(chromium, live_server, me)
    await page.goto(f"{live_server}/reports?community=ca&period=month&start=2027-01-15")
    await expect(page.locator("#report-title")).to_contain_text("ca · 月报")
    await expect(page.locator("#report-span")).to_contain_text("2027-01-01 – 2027-01-31 (Asia/Shanghai)")
    await expect(page.locator("#kpi-cost")).to_have_text("15.36")
    await expect(page.locator("#kpi-savings")).to_have_text("3.85")
    await expect(page.locator("#kpi-target")).to_have_text("20.0%")  # 24 kWh against 20
    for chart in ("work_orders", "energy_kwh", "energy_cost"):
        await expect(page.locator(f"figure[data-chart={chart}] rect")).to_have_count(1)
    await expect(page.locator("#table-energy td").first).to_have_text("m-1")
    await expect(page.locator("#table-energy th").first).to_have_text("电表")
    assert "cb" not in await page.locator("select[name=community]").inner_text()  # not the caller's
    await shot(page, "report-month")

    async with page.expect_download() as csv_info:
        await page.click("#table-energy a.csv")
    csv_file = await csv_info.value
    assert csv_file.suggested_filename == "ca-month-2027-01-01-energy.csv"
    text = (await _read(csv_file)).decode("utf-8-sig")
    assert text.splitlines()[1].startswith("m-1,b1,24.000,")
    assert "19.21" in text  # the baseline cost is in the export

    async with page.expect_download() as pdf_info:
        await page.click("#pdf-link")
    pdf_file = await pdf_info.value
    assert pdf_file.suggested_filename == "ca-month-2027-01-01.pdf"
    assert (await _read(pdf_file)).startswith(b"%PDF")

    await page.goto(f"{live_server}/reports?community=ca&period=month&start=2027-01-15&lang=en")
    await expect(page.locator("#report-title")).to_contain_text("Monthly report")
    await expect(page.locator("#table-energy th").first).to_have_text("Meter")

    await page.click("#company-link")
    await expect(page.locator("#report-title")).to_contain_text("Whole company")
    await expect(page.locator("#table-communities tbody tr")).to_have_count(2)  # ca and the total row
    async with page.expect_download() as company_csv:
        await page.click("#table-communities a.csv")
    rows = (await _read(await company_csv.value)).decode("utf-8-sig").splitlines()
    assert rows[1].startswith("ca,1,")

    await page.goto(f"{live_server}/reports?community=cb")
    await expect(page.locator("body")).to_contain_text("Not found")
