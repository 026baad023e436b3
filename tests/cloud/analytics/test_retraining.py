"""The service's schedule (retrain every day on the last 14 days, score in between) on the
product path (issue 15): daily retraining does not learn a slow fault — bearing wear at 0.5 %/day
is found, a healthy pump raises nothing — and ordinary operation (an operator's setpoint change,
more water demand) opens no work order."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from bench.analytics_eval import single_device
from cloud.analytics import modelstore
from cloud.analytics.frames import DAY_MS
from cloud.analytics.jobs import score, train
from simulators.labelled_fleet import OperatingChange
from tests.support.analytics import add_device, load_rollup

START_MS = 1_767_225_600_000
DAYS = 44
WEAR_DAY = 14


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


async def test_daily_retraining_does_not_absorb_slow_wear(conn: psycopg.AsyncConnection[Any]) -> None:
    worn, _ = single_device("pump", "b1-pump-1", days=DAYS, seed=21, fault="bearing_wear", fault_start_day=WEAR_DAY,
                            fault_params={"percent_per_day": 0.5})
    healthy, _ = single_device("pump", "b1-pump-2", days=DAYS, seed=22)
    worn_id = await add_device(conn, "c-slow", "b1", "b1-pump-1", "pump", "vfd-pump")
    healthy_id = await add_device(conn, "c-slow", "b1", "b1-pump-2", "pump", "vfd-pump")
    await load_rollup(conn, worn_id, worn)
    await load_rollup(conn, healthy_id, healthy)

    held = 0
    for day in range(WEAR_DAY, DAYS):
        now = _at(START_MS + day * DAY_MS)
        models = await train(conn, now - dt.timedelta(days=14), now, kinds=["pump"], community="c-slow")
        held = max(held, int(models["pump"].metrics["held"]))
        await score(conn, now + dt.timedelta(days=1), since=now, community="c-slow", health=False)

    cur = await conn.execute("SELECT device_id, fault, detected_at FROM analytics_detections ORDER BY detected_at")
    rows = await cur.fetchall()
    wear = [r for r in rows if r[0] == worn_id and r[1] == "bearing_wear"]
    assert wear, rows
    lead_days = (wear[0][2] - _at(START_MS + WEAR_DAY * DAY_MS)).total_seconds() / 86_400
    assert lead_days < DAYS - WEAR_DAY
    assert [r for r in rows if r[0] == healthy_id] == []
    assert held >= 1  # the worn pump's baseline was held back by the gate at least once
    reference = await modelstore.load_reference(conn, worn_id, "pump")
    assert reference is not None
    assert reference.window_end == _at(START_MS + WEAR_DAY * DAY_MS)


async def _service_schedule(conn: psycopg.AsyncConnection[Any], community: str, first_day: int, days: int) -> None:
    for day in range(first_day, days):
        now = _at(START_MS + day * DAY_MS)
        await train(conn, now - dt.timedelta(days=14), now, kinds=["pump"], community=community)
        for hour in range(0, 24, 6):  # 6-hour passes, as the replay and a slow service would
            await score(conn, now + dt.timedelta(hours=hour + 6), since=now + dt.timedelta(hours=hour),
                        community=community, health=False)


async def test_setpoint_and_demand_changes_open_no_work_order(conn: psycopg.AsyncConnection[Any]) -> None:
    change_ms = START_MS + 18 * DAY_MS + 10 * 3_600_000  # 18:00 in Shanghai, the operator's shift
    cases = {
        "b2-pump-1": [OperatingChange(change_ms, setpoint=3.6)],
        "b2-pump-2": [OperatingChange(change_ms, setpoint=4.4)],
        "b2-pump-3": [OperatingChange(change_ms, demand_factor=1.25)],
        "b2-pump-4": [OperatingChange(change_ms, setpoint=3.6, demand_factor=1.25)],
    }
    for seed, (code, changes) in enumerate(cases.items(), start=41):
        frame, _ = single_device("pump", code, days=28, seed=seed, changes=changes)
        await load_rollup(conn, await add_device(conn, "c-ops", "b2", code, "pump", "vfd-pump"), frame)
    await _service_schedule(conn, "c-ops", 14, 28)

    cur = await conn.execute("SELECT d.code, a.detector, a.detected_at FROM analytics_detections a "
                             "JOIN devices d ON d.id = a.device_id")
    assert await cur.fetchall() == []
    cur = await conn.execute("SELECT device, title FROM work_orders WHERE community = 'c-ops'")
    assert await cur.fetchall() == []
    # the new operating point became the reference once the set had run at it for two days
    cur = await conn.execute("SELECT d.code, r.reason, r.params->>'setpoint_normal' FROM analytics_references r "
                             "JOIN devices d ON d.id = r.device_id WHERE d.code = 'b2-pump-1'")
    assert await cur.fetchall() == [("b2-pump-1", "operating point", "3.6")]
