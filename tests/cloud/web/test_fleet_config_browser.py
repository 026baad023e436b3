"""The ``/fleet/config`` page in a real Chromium (Playwright) against the real app on uvicorn and a
real PostgreSQL: an engineer sees each gateway's running configuration version and the outcome
of its last push beside its health, in Chinese by default, and aborts a halted rollout with the
page's button (audited). Skipped with a reason when Chromium or Playwright is not installed."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.ops.fleet import configs, rollout
from cloud.registry import store
from edge.bundle import check_bundle
from guanjia.core.wire_config import ConfigReport
from tests.support.browser import BROWSER_MARKS, login
from tests.support.edge.bundles import broken_profile, pump_bundle
from tests.support.webapp import MakeUser

if TYPE_CHECKING:
    from playwright.async_api import Browser

pytestmark = BROWSER_MARKS
NOW = dt.datetime(2026, 12, 7, 4, 30, tzinfo=dt.UTC)


async def test_engineer_sees_versions_and_aborts_a_halted_rollout(live_server: str, chromium: Browser,
                                                                  pool: AsyncConnectionPool[Any],
                                                                  make_user: MakeUser, web_db: str) -> None:
    from playwright.async_api import expect

    with psycopg.connect(web_db) as conn:
        gateway_id = store.add_gateway(conn, "cA", "gw-a")
    engineer = await make_user(Role.engineer, "cA")
    good = pump_bundle(1502, [("pump-1", 1)])
    async with pool.connection() as conn:
        (ref,) = await configs.gateway_refs(conn, [gateway_id], all_communities=True, communities=[])
        version = await rollout.upload_version(conn, check_bundle, ref, good, by="e", at=NOW, note="")
        assert isinstance(version, str)
        started = await rollout.start_rollout(conn, check_bundle, [ref], {"profiles/pump.yaml": broken_profile()}, [],
                                              canary=1, percent=50, probation_s=5, by="e", at=NOW, note="new registers")
        assert isinstance(started, int)
        (target,) = await configs.targets(conn, started)
        await configs.record_report(conn, gateway_id, ConfigReport(
            "rolled_back", version, version, target.version, target.push_id, "devices_offline",
            "online before the push, failing after it: pump-1", 0), NOW)
        await configs.move_target(conn, target.push_id, ("waiting",), "failed", NOW, reason="devices_offline")
        await configs.move_rollout(conn, started, ("running",), "halted", NOW, "cA/gw-a: devices_offline")

    page = await login(chromium, live_server, engineer)
    await page.goto(f"{live_server}/fleet/config")
    await expect(page.locator("h1")).to_have_text("网关配置")
    row = page.locator('tr[data-gateway="cA/gw-a"]')
    await expect(row.locator(".cfg-version")).to_have_text(version)
    await expect(row.locator(".cfg-state")).to_contain_text("已自动回滚")
    rollout_row = page.locator(f'tr[data-rollout="{started}"]')
    await expect(rollout_row.locator(".rollout-state")).to_have_text("已暂停")
    await rollout_row.get_by_role("button", name="中止").click()
    await page.wait_for_load_state("networkidle")
    await expect(page.locator(f'tr[data-rollout="{started}"] .rollout-state')).to_have_text("已中止")
    with psycopg.connect(web_db) as conn:
        audited = conn.execute("SELECT actor FROM admin_audit WHERE action = 'config.rollout_aborted'").fetchone()
    assert audited == (engineer.user.username,)
