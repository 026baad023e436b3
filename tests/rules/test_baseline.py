"""The learned hour-of-week baseline: learns quietly, ignores normal variation, fires on drift."""

from __future__ import annotations

import math
import random
from collections.abc import Callable

from rules.engine import AlarmEvent, RuleEngine
from tests.support.rules import engine, states

HOUR = 3_600_000
WEEK0 = 1_749_427_200_000  # Monday 2025-06-09 00:00 UTC: hour-of-week buckets line up with days

DRIFT = """
rules:
  - id: energy-drift
    severity: warning
    kinds: [meter]
    message: "{device}: {value:.2f} kWh, {deviation_pct:+.0f}% vs {baseline:.2f}"
    baseline:
      metric: energy_import
      aggregate: increase
      bucket: hour_of_week
      above_pct: 15
      clear_pct: 10
      min_samples: 3
      min_delta: 0.2
      timezone: UTC
"""


def normal_kwh(hour_index: int) -> float:
    hour_of_day = hour_index % 24
    weekday = (hour_index // 24) % 7
    daily = 4.0 + 3.0 * math.sin((hour_of_day - 6) / 24 * 2 * math.pi)
    return daily * (0.8 if weekday >= 5 else 1.0)


def feed(
    eng: RuleEngine, hours: range, factor: Callable[[int], float], rng: random.Random, counter: list[float]
) -> list[AlarmEvent]:
    out = []
    for h in hours:
        per_hour = normal_kwh(h) * factor(h) * (1 + rng.uniform(-0.05, 0.05))
        for step in range(12):  # a reading every 5 minutes
            counter[0] += per_hour / 12
            out += eng.process("m1", "meter", WEEK0 + h * HOUR + step * 300_000, {"energy_import": counter[0]})
    return out


def test_learns_then_fires_on_drift_and_clears() -> None:
    eng = engine(DRIFT)
    rng = random.Random(7)
    counter = [10_000.0]
    weeks = 4 * 168
    out = feed(eng, range(weeks), lambda h: 1.0, rng, counter)
    assert out == [], "normal ±5% variation must never fire"
    drift = feed(eng, range(weeks, weeks + 6), lambda h: 1.2, rng, counter)
    assert states(drift)[:1] == [("energy-drift", "raise")]
    raised = drift[0]
    assert raised.value is not None
    assert 1.1 * normal_kwh(weeks) < float(raised.value)
    assert "+" in raised.message
    assert "%" in raised.message
    back = feed(eng, range(weeks + 6, weeks + 12), lambda h: 1.0, rng, counter)
    assert states(back) == [("energy-drift", "clear")]


def test_does_not_fire_before_min_samples() -> None:
    eng = engine(DRIFT)
    rng = random.Random(3)
    counter = [0.0]
    # two weeks only: every bucket has 2 samples < min_samples, so even +50% is not judged
    out = feed(eng, range(2 * 168), lambda h: 1.0 if h < 168 else 1.5, rng, counter)
    assert out == []


def test_baseline_survives_snapshot_restore() -> None:
    eng = engine(DRIFT)
    rng = random.Random(11)
    counter = [0.0]
    feed(eng, range(4 * 168), lambda h: 1.0, rng, counter)
    import orjson

    snap = orjson.loads(orjson.dumps(eng.snapshot()))
    restored = RuleEngine.restore(eng.ruleset, snap)
    out = feed(restored, range(4 * 168, 4 * 168 + 3), lambda h: 1.3, rng, counter)
    assert states(out)[:1] == [("energy-drift", "raise")]


def test_hourly_rollups_from_the_cloud() -> None:
    """The cloud feeds one energy-per-hour value per hour (aggregate: sum) from its rollups."""
    text = DRIFT.replace("metric: energy_import", "metric: kwh").replace("aggregate: increase", "aggregate: sum")
    eng = engine(text, stale_after_ms=None)
    rng = random.Random(5)
    out: list[AlarmEvent] = []
    for h in range(4 * 168 + 2):
        factor = 1.25 if h >= 4 * 168 else 1.0
        out += eng.process("m1", "meter", WEEK0 + h * HOUR, {"kwh": normal_kwh(h) * factor * rng.uniform(0.97, 1.03)})
    assert states(out) == [("energy-drift", "raise")]


def test_rollup_hour_is_judged_by_tick_without_waiting_for_the_next_hour() -> None:
    """A rollup for hour h fed after the hour ended is judged at the next tick, not an hour later."""
    text = DRIFT.replace("metric: energy_import", "metric: kwh").replace("aggregate: increase", "aggregate: sum")
    eng = engine(text, stale_after_ms=None)
    rng = random.Random(9)
    out: list[AlarmEvent] = []
    weeks = 4 * 168
    for h in range(weeks + 1):
        factor = 1.25 if h == weeks else 1.0
        out += eng.process("m1", "meter", WEEK0 + h * HOUR, {"kwh": normal_kwh(h) * factor * rng.uniform(0.97, 1.03)})
        out += eng.tick(WEEK0 + (h + 1) * HOUR + 120_000)  # the cloud's rollup job, 2 minutes past the hour
    assert states(out) == [("energy-drift", "raise")]
    assert out[0].ts == WEEK0 + (weeks + 1) * HOUR + 120_000
    assert out[0].value is not None
