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

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from bench.webdata import World, build_world
from cloud.auth.roles import Role
from cloud.ops.fleet.dispatcher import components as dispatcher
from cloud.registry import store
from cloud.runtime.context import CloudConfig
from cloud.service import CloudService
from device_profiles import find_profile
from guanjia.core.settings import Settings
from tests.support.browser import BROWSER_MARKS, login, shot
from tests.support.edge.collector import Collector
from tests.support.edge.process import AgentProcess
from tests.support.edge.servers import ProfileServer, Unit
from tests.support.services import BrokerHandle
from tests.support.webapp import Login, MakeUser

try:
    from playwright.async_api import Browser, Page, async_playwright, expect
except ImportError:  # pragma: no cover - dev extra not installed
    async_playwright = None  # type: ignore[assignment]

pytestmark = BROWSER_MARKS


@pytest.fixture
def server(live_server: str) -> str:
    """The app on uvicorn (``tests/plugins/browser.py``)."""
    return live_server


@pytest.fixture
def browser(chromium: Browser) -> Browser:
    """Debian's Chromium, headless (``tests/plugins/browser.py``)."""
    return chromium


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


async def test_engineer_changes_a_pump_setpoint_and_sees_the_reply(
        server: str, browser: Browser, make_user: MakeUser, web_db: str, broker: BrokerHandle,
        tmp_path: Path) -> None:
    """The demo of issue 19: the device page's command form → the command dispatcher → the real
    broker → an edge agent subprocess → a pymodbus pump; the page shows the edge's reply."""
    community, gateway = f"c{uuid.uuid4().hex[:6]}", f"gw{uuid.uuid4().hex[:6]}"
    with psycopg.connect(web_db) as conn:
        store.add_gateway(conn, community, gateway)
        device = store.add_device(conn, community, "b1-pump-1", gateway=gateway, kind="pump", profile_id="vfd-pump")
    engineer = await make_user(Role.engineer, community)
    _, url = broker.add_gateway(community, gateway)
    unit = Unit(1, find_profile("vfd-pump"), {"pressure_setpoint": 3.0})
    settings = Settings(mode="test", database_url=web_db, mqtt_url=broker.admin_url,
                        secret_key="test-secret-key-for-the-web-tests-0123456789")
    config = CloudConfig.from_settings(settings, api=False, migrate=False, prefer_timescale=False)
    async with ProfileServer([unit]) as modbus, CloudService(settings, config, components=[dispatcher]), \
            Collector(broker.admin_url, community, gateway) as wire:
        edge = AgentProcess(tmp_path, url, community, gateway, modbus.port, [
            {"id": "b1-pump-1", "profile": "vfd-pump", "unit": 1, "report_by_exception": False}]).start()
        try:
            await wire.wait_for(lambda: any(e["type"] == "device_online" for e in wire.items("events")), timeout=30)
            page = await login(browser, server, engineer)
            await page.goto(f"{server}/devices/{device}")
            await page.select_option("#command-point", "pressure_setpoint")
            await page.fill("#command-value", "4.2")
            await page.click("#command-send")
            row = page.locator("#command-trail tbody tr").first
            await expect(row.locator(".cmd-done")).to_be_visible(timeout=20_000)  # the page reloads on the reply
            await expect(row.locator(".cmd-done")).to_contain_text("已执行")
            await expect(row).to_contain_text("pressure_setpoint = 4.2")
            await expect(row).to_contain_text(engineer.user.username)
            assert (6, 2002, [420]) in unit.writes
            await shot(page, "device-command")
            # out of range: refused by the cloud, shown in the trail, never sent (the form kept the point)
            assert await page.locator("#command-point").input_value() == "pressure_setpoint"
            await page.fill("#command-value", "12")
            await page.click("#command-send")
            await expect(page.locator("#command-trail tbody tr").first.locator(".cmd-rejected")).to_contain_text(
                "out_of_range")
            assert not any(values == [1200] for _fc, _addr, values in unit.writes)
        finally:
            edge.stop()


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


# --- the device pages speak the device's language (issue 23) --------------------------------------

WORDS: dict[str, dict[str, Any]] = {
    "zh": {
        "groups": ["状态", "故障与报警", "累计"],
        "lift": {"door_state": "关闭", "car_moving": "运行", "fault_code": "困人 (1)", "alarm_word": "困人、门锁故障",
                 "speed": "1.23 m/s", "run_count": "123,456", "floor": "7"},
        "lift_labels": ["门", "轿厢运行", "故障", "报警", "速度", "运行次数"],
        "lift_increase": "24 小时 +240",
        "lift_bands": ["关闭", "打开"], "door_option": "门", "trapped": "电梯困人",
        "pump": {"running": "运行", "fault_code": "过流 (0x2310)", "outlet_pressure": "4.57 bar",
                 "motor_temperature": "41.3 °C", "pump_alarms": "无"},
        "pump_option": "出口压力 (bar)",
        "meter": {"voltage_l1": "229.9 V", "power_total": "5,123 W", "power_factor": "0.93",
                  "energy_total": "52.5 kWh"},
        "meter_labels": ["L1 电压", "总有功功率", "总有功电能"], "meter_increase": "24 小时 +60.0",
        "gate": {"door_state": "打开", "lock_state": "未锁", "tamper": "正常", "passages_in": "40,100"},
        "gate_bands": ["关闭", "打开"],
    },
    "en": {
        "groups": ["Status", "Faults and alarms", "Counters"],
        "lift": {"door_state": "closed", "car_moving": "moving", "fault_code": "passengers trapped (1)",
                 "alarm_word": "passengers trapped, door lock fault", "speed": "1.23 m/s", "run_count": "123,456"},
        "lift_labels": ["Door", "Car moving", "Fault", "Alarms", "Speed", "Trips"],
        "lift_increase": "+240 in 24 h",
        "lift_bands": ["closed", "open"], "door_option": "Door", "trapped": "Passengers trapped",
        "pump": {"running": "running", "fault_code": "overcurrent (0x2310)", "outlet_pressure": "4.57 bar",
                 "motor_temperature": "41.3 °C", "pump_alarms": "none"},
        "pump_option": "Outlet pressure (bar)",
        "meter": {"voltage_l1": "229.9 V", "power_total": "5,123 W", "energy_total": "52.5 kWh"},
        "meter_labels": ["Voltage L1", "Total active power", "Total energy"], "meter_increase": "+60.0 in 24 h",
        "gate": {"door_state": "open", "lock_state": "unlocked", "tamper": "normal", "passages_in": "40,100"},
        "gate_bands": ["closed", "open"],
    },
}


async def _engineer_page(browser: Browser, base: str, who: Login) -> Page:
    """A browser in New York with a 12-hour locale: the page must still show Beijing's 24-hour time."""
    return await login(browser, base, who, locale="en-US", height=1000, timezone_id="America/New_York")


async def _values(page: Page, expected: dict[str, str]) -> None:
    for metric, text in expected.items():
        await expect(page.locator(f"#live-values dd[data-metric={metric}] .v")).to_have_text(text)


async def _chart(page: Page, metric: str | None = None) -> Any:
    if metric is not None:
        await page.select_option("#chart-metric", metric)
    chart = page.locator("#chart[data-ready='1']")
    await expect(chart).to_be_visible(timeout=15_000)
    return chart


async def _axis_in_beijing_24h(page: Page) -> None:
    from zoneinfo import ZoneInfo

    chart = page.locator("#chart")
    labels = (await chart.get_attribute("data-axis") or "").split("|")
    ticks = [float(t) for t in (await chart.get_attribute("data-axis-t") or "").split("|")]
    assert len(labels) >= 3, labels
    beijing = ZoneInfo("Asia/Shanghai")
    assert labels == [dt.datetime.fromtimestamp(t, beijing).strftime("%H:%M") for t in ticks]
    assert not any(x in label for label in labels for x in ("AM", "PM", "上午", "下午"))


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_device_pages_speak_the_devices_language(server: str, browser: Browser, pool: AsyncConnectionPool[Any],
                                                       make_user: MakeUser, lang: str) -> None:
    from tests.support.devicepages import seed

    engineer = await make_user(Role.engineer, "cD")
    async with pool.connection() as conn:
        pages = await seed(conn, "cD", dt.datetime.now(dt.UTC))
    words = WORDS[lang]
    page = await _engineer_page(browser, server, engineer)

    # lift: groups, labels, enum words, fault name with its code, set flags, counter increase
    await page.goto(f"{server}/devices/{pages.devices['lift']}?lang={lang}")
    await expect(page.locator("#live-values h3.group")).to_have_text(words["groups"])
    await _values(page, words["lift"])
    dts = await page.locator("#live-values dt").all_inner_texts()
    assert all(label in dts for label in words["lift_labels"]), dts
    assert "door_state" not in dts
    await expect(page.locator("#live-values dd[data-metric=run_count] .inc")).to_have_text(words["lift_increase"])
    await expect(page.locator("#chart-metric option[value=door_state]")).to_have_text(words["door_option"])
    chart = await _chart(page, "door_state")
    assert await chart.get_attribute("data-kind") == "state"
    await expect(page.locator("#chart-states li")).to_have_text(words["lift_bands"])
    await _axis_in_beijing_24h(page)
    # the alarm and its work order are named by their rule in the page's language
    await expect(page.locator(".rule-title")).to_have_text([words["trapped"], words["trapped"]])
    await shot(page, f"device-lift-{lang}")
    # a live update (SSE) arrives as words too: the door opens
    async with pool.connection() as conn:
        await conn.execute("UPDATE telemetry_last SET value = 1, time = now() WHERE device_id = %s AND metric_id ="
                           " (SELECT id FROM metrics WHERE name = 'door_state')", (pages.devices["lift"],))
    await expect(page.locator("#live-values dd[data-metric=door_state] .v")).to_have_text(words["lift_bands"][1],
                                                                                         timeout=15_000)

    # pump: a bool's state word, a hex fault code, units; its pressure is a line, not bands
    await page.goto(f"{server}/devices/{pages.devices['pump']}?lang={lang}")
    await _values(page, words["pump"])
    await expect(page.locator("#chart-metric option[value=outlet_pressure]")).to_have_text(words["pump_option"])
    chart = await _chart(page)
    assert await chart.get_attribute("data-kind") == "number"
    assert int(await chart.get_attribute("data-points") or 0) > 1000
    await expect(page.locator("#chart-states")).to_be_hidden()
    await _axis_in_beijing_24h(page)
    await shot(page, f"device-pump-{lang}")

    # meter: phase labels, precision and units; the energy counter's day survives its reset
    await page.goto(f"{server}/devices/{pages.devices['meter']}?lang={lang}")
    await _values(page, words["meter"])
    dts = await page.locator("#live-values dt").all_inner_texts()
    assert all(label in dts for label in words["meter_labels"]), dts
    await expect(page.locator("#live-values dd[data-metric=energy_total] .inc")).to_have_text(words["meter_increase"])
    await expect(page.locator("#health tr[data-metric=energy_total] td").nth(2)).to_have_text("60.0")
    await _chart(page)
    await _axis_in_beijing_24h(page)
    await shot(page, f"device-meter-{lang}")

    # gate: its door drawn as state bands
    await page.goto(f"{server}/devices/{pages.devices['gate']}?lang={lang}")
    await _values(page, words["gate"])
    chart = await _chart(page, "door_state")
    assert await chart.get_attribute("data-kind") == "state"
    await expect(page.locator("#chart-states li")).to_have_text(words["gate_bands"])
    await shot(page, f"device-gate-{lang}")

    # gateway: a few figures up front, the raw dump behind "details"
    await page.goto(f"{server}/gateways/{pages.gateway_id}?lang={lang}")
    summary = page.locator("#gw-summary")
    await expect(summary.locator("[data-figure=lateness_p99] b")).to_have_text("38 ms")
    await expect(summary.locator("[data-figure=outbox] b")).to_have_text("42")
    await expect(summary.locator("[data-figure=errors_1h] b")).to_have_text("3")
    await expect(summary.locator("[data-figure=devices_offline] b")).to_have_text("1")
    await expect(summary.locator("[data-figure=agent] b")).to_have_text("0.1.0")
    await expect(summary.locator("[data-figure=config] b")).to_have_text("3f2a9c1b7d4e")
    await expect(page.locator("#gw-status")).to_be_hidden()
    await page.locator("#gw-details summary").click()
    await expect(page.locator("#gw-status")).to_be_visible()
    await shot(page, f"gateway-{lang}")
