"""Model round trip and versioning in PostgreSQL; train → score → fleet alarm → planned work order."""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

import psycopg
import pytest

from bench.analytics_eval import single_device
from cloud.analytics import modelstore
from cloud.analytics.errors import ModelFormatError
from cloud.analytics.frames import DAY_MS
from cloud.analytics.jobs import score, train
from tests.support.analytics import add_device, load_rollup

START_MS = 1_767_225_600_000


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


async def test_model_round_trip_versions_and_activation(conn: psycopg.AsyncConnection[Any]) -> None:
    device_id = await add_device(conn, "c-store", "b1", "b1-pump-1", "pump", "vfd-pump")
    params = {"limits": {"current_excess": 0.07}, "coef": [1.0, 2.5, float("nan")], "alpha": 1 / 24}
    first = await modelstore.save_model(conn, detector="pump", kind="pump", params=params,
                                        window=(_at(START_MS), _at(START_MS + DAY_MS)), source="test")
    await modelstore.save_baseline(conn, first.id, device_id, {"profile": [1.0, float("inf")]},
                                   (_at(START_MS), _at(START_MS + DAY_MS)), samples=24)
    second = await modelstore.save_model(conn, detector="pump", kind="pump", params={"limits": {}})
    await conn.commit()
    assert (first.version, second.version) == (1, 2)

    active = await modelstore.load_model(conn, "pump")
    assert active is not None
    assert active.version == 2
    assert active.active
    old = await modelstore.load_model(conn, "pump", version=1)
    assert old is not None
    assert not old.active
    assert old.params["limits"] == {"current_excess": 0.07}
    assert old.params["coef"][:2] == [1.0, 2.5]
    assert math.isnan(old.params["coef"][2])
    assert old.window_start == _at(START_MS)
    baselines = await modelstore.load_baselines(conn, first.id)
    assert baselines[device_id]["profile"][0] == 1.0
    assert math.isnan(baselines[device_id]["profile"][1])

    await modelstore.activate(conn, "pump", 1)
    await conn.commit()
    active = await modelstore.load_model(conn, "pump")
    assert active is not None
    assert active.version == 1
    assert [m.active for m in await modelstore.list_models(conn, "pump")] == [True, False]
    with pytest.raises(ModelFormatError):
        await modelstore.activate(conn, "pump", 7)


async def test_stored_models_are_json_never_pickle(conn: psycopg.AsyncConnection[Any]) -> None:
    with pytest.raises(ModelFormatError):
        await modelstore.save_model(conn, detector="x", kind="pump", params={"model": object()})
    await conn.rollback()
    await conn.execute("INSERT INTO analytics_models (detector, kind, version, format, params, active) "
                       "VALUES ('y', 'pump', 1, 'pickle', '{}', true)")
    with pytest.raises(ModelFormatError, match="pickle"):
        await modelstore.load_model(conn, "y")


async def test_bearing_wear_becomes_a_planned_work_order_with_an_explanation(
        conn: psycopg.AsyncConnection[Any]) -> None:
    days = 21
    frame, _ = single_device("pump", "b1-pump-1", days=days, seed=5, fault="bearing_wear", fault_start_day=15,
                             fault_params={"percent_per_day": 6.0})
    device_id = await add_device(conn, "c-jobs", "b1", "b1-pump-1", "pump", "vfd-pump")
    await load_rollup(conn, device_id, frame)

    models = await train(conn, _at(START_MS), _at(START_MS + 14 * DAY_MS), kinds=["pump"])
    assert models["pump"].metrics["devices"] == 1
    assert models["pump"].params["limits"]["current_excess"] > 0  # shipped limits or the floor

    quiet = await score(conn, _at(START_MS + 15 * DAY_MS), since=_at(START_MS + 14 * DAY_MS))
    assert quiet.detections == []  # fault-free day: nothing raised
    result = await score(conn, _at(START_MS + days * DAY_MS), since=_at(START_MS + 15 * DAY_MS))
    wear = sorted((d for d in result.detections if d.fault == "bearing_wear"), key=lambda d: d.detected_ms)
    # one detection per wear channel at most (the day-long and the three-day average, issue 15)
    assert 1 <= len(wear) <= 2
    assert len({d.detector for d in wear}) == len(wear)
    assert "more current than usual for this pressure" in wear[0].message
    assert wear[0].detected_ms - (START_MS + 15 * DAY_MS) < 4 * DAY_MS

    # however many channels saw the wear: one alarm (per fault) and one work order
    cur = await conn.execute("SELECT rule FROM alarms WHERE device = 'b1-pump-1'")
    assert await cur.fetchall() == [("analytics.pump.bearing_wear",)]
    cur = await conn.execute("SELECT source, severity, message, work_order, id FROM alarms WHERE device = 'b1-pump-1'")
    alarm = await cur.fetchone()
    assert alarm is not None
    assert alarm[:2] == ("fleet", "warning")
    assert alarm[3]
    assert "b1-pump-1 draws" in alarm[2]
    cur = await conn.execute("SELECT priority, origin, title FROM work_orders WHERE alarm_id = %s", (alarm[4],))
    order = await cur.fetchone()
    assert order is not None
    assert order[0] == "P3"
    assert order[1] == "alarm"

    # scoring the same hours again raises nothing new (one open detection per device and detector)
    again = await score(conn, _at(START_MS + days * DAY_MS), since=_at(START_MS + 15 * DAY_MS))
    assert again.detections == []
    cur = await conn.execute("SELECT count(*) FROM work_orders WHERE device = 'b1-pump-1' AND priority <> 'P3'")
    row = await cur.fetchone()
    assert row is not None
    assert row[0] == 0
    cur = await conn.execute("SELECT score, record, deductions FROM device_health WHERE device_id = %s", (device_id,))
    health = await cur.fetchone()
    assert health is not None
    assert health[0] < 100
    assert health[1]["starts"] > 0
    assert health[1]["run_hours"] > 0
    assert health[1]["duty_cycle"] > 0
    assert any("anomaly" in d["reason"] for d in health[2])

    # retraining over the worn weeks keeps the suspect pump's old baseline (wear must not become normal)
    retrained = await train(conn, _at(START_MS + 7 * DAY_MS), _at(START_MS + days * DAY_MS), kinds=["pump"])
    assert retrained["pump"].version == models["pump"].version + 1
    old = await modelstore.load_baselines(conn, models["pump"].id)
    new = await modelstore.load_baselines(conn, retrained["pump"].id)
    assert new[device_id]["coef"] == old[device_id]["coef"]


async def test_a_recovered_device_clears_its_detection_and_alarm(conn: psycopg.AsyncConnection[Any]) -> None:
    frame, _ = single_device("pump", "b3-pump-1", days=17, seed=6, fault="dry_run", fault_start_day=15.5,
                             fault_hours=3.0)
    device_id = await add_device(conn, "c-clear", "b3", "b3-pump-1", "pump", "vfd-pump")
    await load_rollup(conn, device_id, frame)
    await train(conn, _at(START_MS), _at(START_MS + 14 * DAY_MS), kinds=["pump"])
    during = START_MS + int(15.5 * DAY_MS) + 2 * 3_600_000  # two hours into the dry run
    raised = await score(conn, _at(during), since=_at(START_MS + 15 * DAY_MS))
    assert "dry_run" in {d.fault for d in raised.detections}
    cur = await conn.execute("SELECT count(*) FROM alarms WHERE device = 'b3-pump-1' AND active")
    row = await cur.fetchone()
    assert row is not None
    assert row[0] >= 1
    later = await score(conn, _at(START_MS + 17 * DAY_MS), since=_at(during))
    assert later.cleared >= 1
    cur = await conn.execute("SELECT count(*) FROM analytics_detections WHERE device_id = %s AND fault = 'dry_run' "
                             "AND open", (device_id,))
    row = await cur.fetchone()
    assert row is not None
    assert row[0] == 0
    cur = await conn.execute("SELECT active, cleared_at IS NOT NULL FROM alarms WHERE device = 'b3-pump-1' "
                             "AND rule LIKE 'analytics.pump.dry_run'")
    assert await cur.fetchall() == [(False, True)]


async def _detections_of(conn: psycopg.AsyncConnection[Any], device_id: int) -> list[tuple[Any, ...]]:
    cur = await conn.execute("SELECT detector, onset_at, detected_at, cleared_at, open FROM analytics_detections "
                             "WHERE device_id = %s ORDER BY detected_at, detector", (device_id,))
    return list(await cur.fetchall())


async def test_stepwise_scoring_with_restarts_records_what_one_pass_records(
        conn: psycopg.AsyncConnection[Any]) -> None:
    """The database path of ``test_timeline.py``'s property: irregular steps, a restarted service
    asking only for its last 2 hours, and an outage, give the rows one pass gives."""
    days = 24
    frame, _ = single_device("pump", "b5-pump-1", days=days, seed=9, fault="dry_run", fault_start_day=15.3,
                             fault_hours=2.0)
    worn, _ = single_device("pump", "b5-pump-2", days=days, seed=10, fault="bearing_wear", fault_start_day=16,
                            fault_params={"percent_per_day": 6.0})
    rows: list[list[tuple[Any, ...]]] = []
    for community, steps in (("c-one", [10 * 24]), ("c-steps", [1, 5, 30, 6, 6, 50, 2, 71, 13, 24, 32])):
        ids = [await add_device(conn, community, "b5", code, "pump", "vfd-pump") for code in ("b5-pump-1", "b5-pump-2")]
        await load_rollup(conn, ids[0], frame)
        await load_rollup(conn, ids[1], worn)
        await train(conn, _at(START_MS), _at(START_MS + 14 * DAY_MS), kinds=["pump"], community=community)
        cursor = START_MS + 14 * DAY_MS
        for i, hours in enumerate(steps):
            stop = cursor + hours * 3_600_000
            since = stop - 2 * 3_600_000 if i % 3 == 2 else cursor  # a restart: "the last 2 hours" only
            await score(conn, _at(stop), since=_at(since), community=community, health=False)
            cursor = stop
        assert cursor == START_MS + days * DAY_MS
        rows.append(await _detections_of(conn, ids[0]) + await _detections_of(conn, ids[1]))
    assert rows[0] == rows[1]
    assert {r[0] for r in rows[0]} >= {"pump.current_excess"}
