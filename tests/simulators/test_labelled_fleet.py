"""The labelled evaluation fleet: the simulators' physics folded into hourly aggregates + ground truth."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import orjson

from cloud.analytics.detectors.meter import COST_RULE_BAND
from simulators.labelled_fleet import (
    COST_CONTROL_BAND,
    DAY_MS,
    MIX,
    FaultPlan,
    FleetDevice,
    HealthyTwin,
    PlannedFault,
    build_fleet,
    feed_threshold,
    labels_jsonl,
    plan_faults,
    run_devices,
    simulate,
    single_device,
)


def test_the_cost_control_band_is_the_meter_detectors() -> None:
    # the simulators cannot import the cloud, so the figure is stated twice: keep them equal
    assert COST_CONTROL_BAND == COST_RULE_BAND


def test_a_small_fleet_is_deterministic_and_labels_lie_after_the_warm_up() -> None:
    first = simulate(12, 20, seed=5, warmup_days=7)
    again = simulate(12, 20, seed=5, warmup_days=7)
    assert set(first.hourly) == set(again.hourly)
    assert {h.kind for h in first.hourly.values()} == set(MIX)
    for device, hourly in first.hourly.items():
        assert hourly.hours == 20 * 24
        for metric, column in hourly.avg.items():
            np.testing.assert_array_equal(column, again.hourly[device].avg[metric])
    assert first.labels == again.labels
    for label in first.labels:
        assert label.device in first.hourly
        assert label.start_ms >= first.start_ms + 7 * DAY_MS
        assert label.start_ms < label.end_ms
    lines = labels_jsonl(first).splitlines()
    assert len(lines) == len(first.faults)
    assert all(orjson.loads(line)["seed"] == 5 for line in lines)


def test_a_single_pump_with_bearing_wear_draws_more_current() -> None:
    hourly, faults = single_device("pump", "p", days=20, seed=3, fault="bearing_wear", fault_start_day=10,
                                   fault_params={"percent_per_day": 10.0})
    assert [f.plan.fault for f in faults] == ["bearing_wear"]
    current = hourly.avg["current"]
    assert np.nanmean(current[-48:]) > np.nanmean(current[5 * 24:9 * 24])


def test_a_restart_surge_the_healthy_twin_also_makes_is_not_the_wears_threshold() -> None:
    """Seed 102's summer fleet: 50 minutes after a 7 %/day bearing wear began on b3-pump-2, the pump
    restarted after an hour asleep and one 20-minute sample read 33.5 A — the overload reference
    raised, and the wear was charged a 57-hour negative lead. The fault-free twin restarts the
    same way, so that raise is the pump's, not the wear's; the wear's own comes days later."""
    start_ms = 1_782_864_000_000  # 2026-07-01, the evaluation's summer start
    fleet = build_fleet(200, 102, start_ms)
    faults = [f for f in plan_faults(fleet, 102, start_ms, 30, 14) if f.device == "b3-pump-2"]
    wear = next(f for f in faults if f.plan.fault == "bearing_wear")
    device = next(d for d in fleet if d.id == "b3-pump-2")
    run_devices([device], {device.id: faults}, start_ms, 30 * 24, 1200)
    assert wear.threshold_ms is None or wear.threshold_ms - wear.start_ms > 3 * DAY_MS


class _Events:
    """A rules engine that raises ``rule`` at the given times (pure logic: no rules needed)."""

    def __init__(self, rule: str, at: set[int]) -> None:
        self.rule, self.at = rule, at

    def process(self, device: str, kind: str, ts_ms: int, values: object, *, profile: str) -> list[object]:
        return [SimpleNamespace(rule=self.rule, state="raise")] if ts_ms in self.at else []


def test_a_threshold_raise_counts_unless_the_twin_raises_it_within_a_step() -> None:
    step = 1_200_000
    plan = FaultPlan("pump", "bearing_wear", True, (1.0, 2.0), lambda _r: {}, threshold_rules=("overload",))
    model = SimpleNamespace(values=dict)
    for twin_at, expected in (({5 * step}, None), ({6 * step}, None), ({9 * step}, 5 * step), (set(), 5 * step)):
        fault = PlannedFault("p", plan, 0, 100 * step, {})
        device = FleetDevice("p", "pump", "vfd-pump", model)  # type: ignore[arg-type]
        twin = HealthyTwin(FleetDevice("p", "pump", "vfd-pump", model), _Events("overload", twin_at), [])  # type: ignore[arg-type]
        engine = _Events("overload", {5 * step})
        for k in range(1, 12):
            feed_threshold(engine, device, [fault], k * step, {}, twin)
        assert fault.threshold_ms == expected, twin_at
