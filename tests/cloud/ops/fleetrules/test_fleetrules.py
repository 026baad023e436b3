"""Fleet rules on rollups: an hour's energy more than 15 % from that meter's normal for the same
weekday and hour raises a fleet alarm through the shared lifecycle; state survives passes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from cloud.ops.fleetrules.runner import FleetRules, fleet_ruleset
from cloud.ops.fleetrules.stream import stream_ruleset
from cloud.ops.model.policy import default_policy
from rules.ruleset import RuleSet


@pytest.fixture
async def meter_db(fresh_db: str) -> Any:
    async with await psycopg.AsyncConnection.connect(fresh_db, autocommit=True) as conn:
        cur = await conn.execute("INSERT INTO communities (code) VALUES ('ce') RETURNING id")
        community = (await cur.fetchone() or (0,))[0]
        cur = await conn.execute("INSERT INTO devices (community_id, code, kind) VALUES (%s, 'meter-1', 'meter') "
                                 "RETURNING id", (community,))
        device = (await cur.fetchone() or (0,))[0]
        cur = await conn.execute("INSERT INTO metrics (name) VALUES ('energy_import') "
                                 "ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id")
        metric = (await cur.fetchone() or (0,))[0]
        yield conn, device, metric


async def hours(conn: psycopg.AsyncConnection[Any], device: int, metric: int, start: datetime,
                used: list[float], counter: float) -> float:
    for i, kwh in enumerate(used):
        counter += kwh
        await conn.execute(
            "INSERT INTO telemetry_1h (bucket, device_id, metric_id, avg_value, min_value, max_value, n) "
            "VALUES (%s, %s, %s, %s, %s, %s, 60)",
            (start + timedelta(hours=i), device, metric, counter, counter - kwh, counter))
    return counter


async def test_energy_baseline_raises_and_clears(meter_db: Any) -> None:
    conn, device, metric = meter_db
    start = datetime(2026, 1, 5, 0, 0, tzinfo=UTC)  # a Monday
    normal = [10.0 + (h % 24) / 4 for h in range(24 * 7)]  # a daily shape, same every week
    counter = 1000.0
    for week in range(4):
        counter = await hours(conn, device, metric, start + timedelta(weeks=week), normal, counter)
    t = start + timedelta(weeks=4)
    counter = await hours(conn, device, metric, t, [normal[0] * 1.4], counter)  # +40 % in the first hour
    runner = FleetRules(default_policy())
    now = t + timedelta(hours=1, minutes=5)
    results = await runner.run_pass(conn, now)
    assert [r.outcome for r in results] == ["raised"]
    cur = await conn.execute("SELECT source, rule, severity, active, device_kind FROM alarms")
    assert await cur.fetchone() == ("fleet", "fleet-energy-baseline", "warning", True, "meter")
    cur = await conn.execute("SELECT message, labels ->> 'message_zh' FROM alarms")
    row = await cur.fetchone()
    assert row is not None
    assert "kWh this hour" in row[0]
    assert "本小时用电" in row[1]  # a fleet alarm speaks both languages, as the edge's do
    # state is kept: the next pass only sees the new hour; a normal hour clears the alarm
    await hours(conn, device, metric, t + timedelta(hours=1), [normal[1]], counter)
    results = await runner.run_pass(conn, now + timedelta(hours=1))
    assert [r.outcome for r in results] == ["cleared"]
    assert await runner.run_pass(conn, now + timedelta(hours=1)) == []


@pytest.mark.parametrize("ruleset", [fleet_ruleset, stream_ruleset])
def test_every_fleet_rule_has_its_message_in_chinese_with_the_same_fields(ruleset: Callable[[], RuleSet]) -> None:
    """Issue 18, as for the edge's library (tests/rules/test_loader.py): the cloud's own rules too."""
    rules = ruleset().rules
    assert rules
    for compiled in rules:
        assert compiled.template_zh is not None, compiled.id
        assert set(compiled.template_zh.names) == set(compiled.template.names), compiled.id
