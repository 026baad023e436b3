"""The device read model on a real PostgreSQL: values grouped and worded from the profile, and
counter increases from the hourly rollup that survive a counter reset."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.queries.device_values import counter_increases, load_device_values
from cloud.queries.health import load_health
from tests.support.devicepages import seed
from tests.support.webapp import MakeUser

NOW = dt.datetime(2026, 3, 2, 10, 30, tzinfo=dt.UTC)


async def test_values_are_grouped_and_worded(pool: AsyncConnectionPool[Any]) -> None:
    async with pool.connection() as conn:
        pages = await seed(conn, "cV", NOW)
        view = await load_device_values(conn, pages.devices["lift"], NOW)
    assert view.profile == "elevator-gbt24476"
    assert view.timezone == "Asia/Shanghai"
    groups = [g.group for g in view.groups]
    assert groups == ["status", "faults", "counters"]
    by_metric = {v.display.metric: v for g in view.groups for v in g.values}
    assert by_metric["door_state"].text.zh == "关闭"
    assert by_metric["door_state"].display.label.zh == "门"
    assert by_metric["door_state"].display.kind == "state"
    assert by_metric["car_moving"].text.en == "moving"
    assert by_metric["fault_code"].text.zh == "困人 (1)"
    assert [f.en for f in by_metric["alarm_word"].flags or []] == ["passengers trapped", "door lock fault"]
    assert by_metric["speed"].text.zh == "1.23 m/s"
    assert by_metric["run_count"].text.zh == "123,456"
    assert by_metric["run_count"].increase_24h == 240
    assert by_metric["run_count"].increase_30d == 480


async def test_counter_increase_survives_a_reset(pool: AsyncConnectionPool[Any]) -> None:
    async with pool.connection() as conn:
        pages = await seed(conn, "cV", NOW)
        found = await counter_increases(conn, pages.devices["meter"], ["energy_total"], NOW)
        health = await load_health(conn, pages.devices["meter"], "meter", NOW)
    day, month = found["energy_total"]
    # 14 hours before the reset, 10 after it, 2.5 kWh each: not max - min (= 1000+), not negative
    assert day == 60.0
    assert month == 120.0
    counter = next(c for c in health.counters if c.metric == "energy_total")
    assert counter.label.zh == "总有功电能"
    assert counter.last_24h == 60.0


async def test_api_values_and_series_carry_the_display(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient,
                                                      make_user: MakeUser) -> None:
    engineer = await make_user(Role.engineer, "cV")
    now = dt.datetime.now(dt.UTC)
    async with pool.connection() as conn:
        pages = await seed(conn, "cV", now)
    headers = {"Authorization": f"Bearer {engineer.token}"}
    resp = await client.get(f"/api/v1/devices/{pages.devices['gate']}/values", headers=headers)
    assert resp.status_code == 200, resp.text
    status = resp.json()["groups"][0]
    assert status["label"] == {"zh": "状态", "en": "Status"}
    door = next(v for v in status["values"] if v["display"]["metric"] == "door_state")
    assert door["text"] == {"zh": "打开", "en": "open"}
    series = await client.get(f"/api/v1/devices/{pages.devices['gate']}/series?metric=door_state&range=24h",
                              headers=headers)
    assert series.status_code == 200, series.text
    body = series.json()
    assert body["display"]["kind"] == "state"
    assert body["display"]["states"]["1"] == {"zh": "打开", "en": "open"}
    assert body["timezone"] == "Asia/Shanghai"
    assert len(body["t"]) > 100
    # a broken sensor's NaN reads as "invalid", never a 500
    async with pool.connection() as conn:
        await conn.execute("UPDATE telemetry_last SET value = 'NaN' WHERE device_id = %s", (pages.devices["lift"],))
    broken = await client.get(f"/api/v1/devices/{pages.devices['lift']}/values", headers=headers)
    assert broken.status_code == 200, broken.text
    texts = {v["display"]["metric"]: v["text"]["en"] for g in broken.json()["groups"] for v in g["values"]}
    assert texts["door_state"] == "invalid"


async def test_alarms_and_orders_carry_their_rules_title(pool: AsyncConnectionPool[Any]) -> None:
    from cloud.queries.history import device_alarms, device_work_orders

    async with pool.connection() as conn:
        await seed(conn, "cV", NOW)
        alarms = await device_alarms(conn, "cV", "lift", 10)
        orders = await device_work_orders(conn, "cV", "lift", 10)
    assert alarms[0].rule_title is not None
    assert alarms[0].rule_title.zh == "电梯困人"
    assert alarms[0].message_in("zh") == "lift：7 层困人（门状态 closed）"
    assert alarms[0].message_in("en") == "lift: passengers trapped at floor 7 (door closed)"
    assert orders[0].rule_title is not None
    assert orders[0].rule_title.en == "Passengers trapped"
