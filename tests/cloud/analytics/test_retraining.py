"""Daily retraining does not learn a slow fault (issue 15): bearing wear at 0.5 %/day is found
with the service's schedule (retrain every day on the last 14 days, score in between), and a
healthy pump on the same schedule raises nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from bench.analytics_eval import single_device
from cloud.analytics import modelstore
from cloud.analytics.frames import DAY_MS
from cloud.analytics.jobs import score, train
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
