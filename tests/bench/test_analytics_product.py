"""The product-path evaluation's arithmetic and its keys (the figures themselves come from
``python -m bench analytics``; a tiny fleet here only checks the plumbing end to end)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from bench.analytics_eval import frame_of
from bench.analytics_product import (
    START_TIMES,
    poisson_rate,
    run_fleet,
    summarise,
    wear_current_shift,
    wear_floor_percent,
    wilson,
)
from cloud.analytics.frames import DAY_MS
from simulators.labelled_fleet import single_device


def test_wilson_interval_matches_the_textbook_values() -> None:
    low, high = wilson(18, 20)
    assert low == pytest.approx(0.699, abs=1e-3)
    assert high == pytest.approx(0.972, abs=1e-3)
    assert wilson(0, 0) == (0.0, 1.0)
    assert wilson(10, 10)[1] == 1.0


def test_the_slow_wear_floor_is_in_current_terms() -> None:
    """Issue 15: 0.5 %/day for 16 days is 8 % wear, but the motor's constant magnetising current
    makes it a smaller shift in current — the figure compared with the (current) floor."""
    start_ms = 1_767_225_600_000
    hourly, faults = single_device("pump", "b1-pump-1", days=31, seed=1, start_ms=start_ms, fault="bearing_wear",
                                   fault_start_day=15, fault_params={"percent_per_day": 0.5})
    shift = wear_current_shift(frame_of(hourly), faults[0].start_ms, start_ms + 31 * DAY_MS)
    assert 0.01 < shift < 0.08
    assert wear_floor_percent() == pytest.approx(3.0)  # the slow channel's floor, in percent of current


def test_poisson_interval_is_garwoods_exact_interval() -> None:
    assert poisson_rate(0, 1.0)[0] == 0.0
    assert poisson_rate(0, 1.0)[1] == pytest.approx(3.689, abs=1e-3)
    low, high = poisson_rate(5, 10.0)
    assert low == pytest.approx(0.1623, abs=1e-3)
    assert high == pytest.approx(1.1668, abs=1e-3)
    assert poisson_rate(3, 0.0)[1] == math.inf


def test_a_tiny_fleet_runs_the_service_schedule_and_reports_every_target_key() -> None:
    outcome = run_fleet(101, START_TIMES["spring-festival"], devices=8, days=20, step_h=12)
    assert outcome.scored
    figures = summarise([("spring-festival", 101, outcome)], seeds=1, starts=1, devices=8, days=20)
    keys = {"seeds", "start_times", "devices", "simulated_days", "inferred_recall", "inferred_recall_low95",
            "precision", "false_alarms_per_device_week", "slow_wear_lead_hours_median", "negative_leads",
            "setpoint_change_false_work_orders", "demand_change_false_work_orders"}
    targets = Path(__file__).resolve().parents[2].parent / "shared" / "targets.json"  # ../shared beside the clone
    if targets.exists():
        keys |= set(json.loads(targets.read_text())["analytics"])
    assert keys <= set(figures)
    assert 0.0 <= float(figures["inferred_recall_low95"]) <= float(figures["inferred_recall"]) <= 1.0
    assert float(figures["false_alarms_per_device_week_low95"]) <= float(figures["false_alarms_per_device_week"])
    assert figures["negative_leads"] == 0 or isinstance(figures["negative_leads"], int)


def test_the_scoring_step_does_not_change_what_the_evaluation_finds() -> None:
    # the full-size evaluation scores once per simulated day (cheaper); the service scores every
    # 15 minutes: the same detections, or the cheaper step would measure something else
    six = run_fleet(102, START_TIMES["winter"], devices=10, days=20, step_h=6)
    daily = run_fleet(102, START_TIMES["winter"], devices=10, days=20, step_h=24)
    assert six.detections, "the fleet should have something to detect"
    assert sorted((d.device, d.detector, d.detected_ms) for d in six.detections) == sorted(
        (d.device, d.detector, d.detected_ms) for d in daily.detections)


def test_the_spring_festival_empties_the_building_and_demand_comes_back() -> None:
    from bench.analytics_product import HOLIDAY_DEMAND, holiday_changes
    from simulators.labelled_fleet import DEMAND_ATTRIBUTES, OperatingChange, build_fleet

    start = START_TIMES["spring-festival"]
    fleet = build_fleet(12, 101, start)
    changes: dict[str, list[OperatingChange]] = {}
    spans = holiday_changes(fleet, start, 30, changes)
    assert len(spans) == 1
    assert spans[0][1] - spans[0][0] == 9 * 86_400_000  # 15–23 Feb, local time
    assert holiday_changes(fleet, START_TIMES["summer"], 30, {}) == []
    # the simulated weeks are the product's calendar's (the holidays library: the State Council's
    # notice): 15 Feb 00:00 Beijing time, and National Day 1–7 Oct; the 3-day Mid-Autumn block
    # inside the October run keeps ordinary demand (not a travel week)
    assert spans[0][0] == 1_771_084_800_000
    october = holiday_changes(fleet, START_TIMES["national-day"], 30, {})
    assert october == [(1_790_784_000_000, 1_790_784_000_000 + 7 * 86_400_000)]
    for device in fleet:
        attr = next(a for a in DEMAND_ATTRIBUTES if hasattr(device.model, a))
        before = float(getattr(device.model, attr))
        going, back = changes[device.id]
        going.apply(device.model)
        assert float(getattr(device.model, attr)) == pytest.approx(before * HOLIDAY_DEMAND[device.kind])
        back.apply(device.model)
        assert float(getattr(device.model, attr)) == pytest.approx(before)
