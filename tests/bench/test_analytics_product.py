"""The product-path evaluation's arithmetic and its keys (the figures themselves come from
``python -m bench analytics``; a tiny fleet here only checks the plumbing end to end)."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from bench.analytics_eval import frame_of
from bench.analytics_product import (
    NUISANCE_PLAN,
    START_TIMES,
    DeviceStore,
    poisson_rate,
    run_fleet,
    summarise,
    wear_current_shift,
    wear_floor_percent,
    wilson,
)
from cloud.analytics.frames import DAY_MS, HOUR_MS
from simulators.labelled_fleet import FAULTS, single_device


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


def _lift(faults: list[tuple[str, float, float, dict[str, int]]], days: int = 20) -> tuple[Any, list[Any]]:
    """One lift run through its physics with ``(fault, start day, hours, params)`` switched on it."""
    from device_profiles import find_profile
    from simulators.labelled_fleet import FleetDevice, PlannedFault, run_device
    from simulators.physics.elevator import ElevatorModel

    start = START_TIMES["winter"]
    model = ElevatorModel("b1-elevator-1", find_profile("elevator-gbt24476"), np.random.default_rng(5), start / 1000)
    device = FleetDevice("b1-elevator-1", "elevator", "elevator-gbt24476", model)
    plans = {"door_lock_fault": next(p for p in FAULTS if p.fault == "door_lock_fault"), "nuisance_code": NUISANCE_PLAN}
    planned = []
    for name, day, hours, params in faults:
        begin = start + int(day * DAY_MS)
        if name == "nuisance_code":  # a minute either side of the nearest 20-minute sample, as the bench does
            begin = start + round(day * DAY_MS / 1_200_000) * 1_200_000 - 60_000
        planned.append(PlannedFault(device.id, plans[name], begin, begin + int(hours * HOUR_MS), params))
    return run_device(device, planned, start, days * 24, 1200), planned


def test_nuisance_codes_show_in_one_sample_and_never_become_labels() -> None:
    from bench.analytics_product import nuisance_codes
    from simulators.labelled_fleet import build_fleet, plan_faults

    start = START_TIMES["winter"]
    fleet = build_fleet(40, 103, start)
    codes = nuisance_codes(fleet, 103, start, 30, 1200)
    lifts = [d for d in fleet if d.kind == "elevator"]
    assert 0 < len(codes) < len(lifts)  # about half of the lifts
    shown = [f for events in codes.values() for f in events]
    assert 2.0 <= len(shown) / len(codes) / (30 / 7) <= 4.0  # ~3 a week
    assert all(f.plan.fault == "nuisance_code" and f.end_ms - f.start_ms == 120_000 for f in shown)
    assert all(f.plan.fault != "nuisance_code" for f in plan_faults(fleet, 103, start, 30, 14))
    # on the lift: the code is in exactly one 20-minute sample of its hour (the hour's max, a third of its mean)
    hourly, planned = _lift([("nuisance_code", 3.2, 1 / 30, {"code": 12})], days=5)
    hour = (planned[0].start_ms + 60_000 - 1 - hourly.start_ms) // HOUR_MS
    assert hourly.max["fault_code"][hour] == 12
    assert hourly.avg["fault_code"][hour] == pytest.approx(4.0)
    assert np.nansum(hourly.max["fault_code"] > 0) == 1


def test_the_service_opens_no_work_order_for_nuisance_codes_and_still_finds_the_real_one() -> None:
    from bench.analytics_eval import frame_of
    from bench.analytics_product import TRAIN_DAYS, service_schedule
    from cloud.analytics.detectors import DETECTORS
    from cloud.analytics.jobs import shipped_limits

    nuisance = [("nuisance_code", 14.5 + 0.37 * i, 1 / 30, {"code": (11, 12, 13)[i % 3]}) for i in range(12)]
    hourly, planned = _lift([*nuisance, ("door_lock_fault", 17.6, 2.0, {})])
    detector = DETECTORS["elevator"]
    params = detector.hyper(shipped_limits().get("elevator", {}))
    start = START_TIMES["winter"]
    store = service_schedule(frame_of(hourly), params, start + TRAIN_DAYS * DAY_MS, start + 20 * DAY_MS, step_h=24)
    found = sorted(store.rows.values(), key=lambda d: d.detected_ms)
    real = planned[-1]
    assert [d.fault for d in found] == ["door_lock_fault"]
    assert real.start_ms <= found[0].detected_ms <= real.end_ms + HOUR_MS


def test_a_repair_ends_the_wear_label_and_a_second_wear_follows_on_the_same_pump() -> None:
    from bench.analytics_product import REPAIR_AFTER_DAYS, repairs
    from simulators.labelled_fleet import build_fleet, plan_faults

    start = START_TIMES["winter"]
    for seed in range(100, 110):
        fleet = build_fleet(60, seed, start)
        faults = plan_faults(fleet, seed, start, 30, 14)
        fixed = repairs(faults, seed, start, 30)
        for device, at in fixed.items():
            wears = sorted((f for f in faults if f.device == device and f.plan.fault == "bearing_wear"),
                           key=lambda f: f.start_ms)
            assert len(wears) == 2
            assert wears[0].end_ms == at == wears[0].start_ms + int(REPAIR_AFTER_DAYS * DAY_MS)
            assert at < wears[1].start_ms < wears[1].end_ms == start + 30 * DAY_MS
        if fixed:
            return
    raise AssertionError("no seed of ten repaired a pump")


def test_after_a_repair_nothing_is_raised_and_the_next_wear_is_found_against_the_new_reference() -> None:
    # 45 days: the product takes the new reference once a whole training window (14 days) lies after
    # the repair (jobs.train: resolved no later than the window's start), so day 33 here; the 30-day
    # evaluation fleets end before that and judge their second wear against the retrained baseline
    from bench.analytics_eval import frame_of
    from bench.analytics_product import TRAIN_DAYS, community_schedule
    from cloud.analytics.detectors import DETECTORS
    from cloud.analytics.jobs import shipped_limits
    from device_profiles import find_profile
    from simulators.labelled_fleet import FleetDevice, PlannedFault, run_device
    from simulators.physics.pump import PumpModel

    start, days = START_TIMES["winter"], 45
    plan = next(p for p in FAULTS if p.fault == "bearing_wear")
    model = PumpModel("b1-pump-1", find_profile("vfd-pump"), np.random.default_rng(7), start / 1000)
    first = PlannedFault("b1-pump-1", plan, start + 15 * DAY_MS, start + 19 * DAY_MS, {"percent_per_day": 8.0})
    second = PlannedFault("b1-pump-1", plan, start + 36 * DAY_MS, start + days * DAY_MS, {"percent_per_day": 8.0})
    hourly = run_device(FleetDevice("b1-pump-1", "pump", "vfd-pump", model), [first, second], start, days * 24, 1200)
    detector = DETECTORS["pump"]
    params = detector.hyper(shipped_limits().get("pump", {}))
    stores = community_schedule([frame_of(hourly)], params, start + TRAIN_DAYS * DAY_MS, start + days * DAY_MS,
                                step_h=24, repairs={"b1-pump-1": first.end_ms})
    store = stores["b1-pump-1"]
    found = sorted(store.rows.values(), key=lambda d: d.detected_ms)
    assert any(first.start_ms <= d.detected_ms <= first.end_ms for d in found), "the first wear is found"
    between = [d for d in found if first.end_ms + 12 * HOUR_MS < d.detected_ms < second.start_ms]
    assert between == [], "a repaired pump raises nothing"
    assert store.reference_end is not None
    assert store.reference_end >= first.end_ms + TRAIN_DAYS * DAY_MS
    assert store.reference_end <= second.start_ms, "the new reference is the healthy weeks after the repair"
    assert any(d.fault == "bearing_wear" and second.start_ms <= d.detected_ms for d in found), "the second wear"


def test_duty_standby_pumps_hand_over_and_the_standby_one_serves_nothing() -> None:
    from bench.analytics_product import duty_standby
    from simulators.labelled_fleet import OperatingChange, build_fleet, run_devices
    from simulators.physics.pump import PumpModel

    start = START_TIMES["winter"]  # a Monday
    fleet = build_fleet(100, 104, start)
    changes: dict[str, list[OperatingChange]] = {}
    paired = duty_standby(fleet, [], 104, start, 30, changes)
    pumps = [d for d in fleet if d.kind == "pump"]
    assert 0 < len(paired) < len(pumps)
    for name in paired:
        hand_overs = changes[name]
        assert all(c.standby is not None for c in hand_overs)
        assert [c.standby for c in hand_overs[1:]] == [not c.standby for c in hand_overs[:-1]]  # alternating
        gaps = {b.at_ms - a.at_ms for a, b in itertools.pairwise(hand_overs[1:])}
        assert gaps in ({DAY_MS}, {7 * DAY_MS})
    # physics: the pump serves its demand on duty and none on standby; a holiday meanwhile scales both
    device = next(d for d in fleet if d.id == paired[0])
    assert isinstance(device.model, PumpModel)
    week = [OperatingChange(start, standby=False), OperatingChange(start + 2 * DAY_MS, standby=True),
            OperatingChange(start + 3 * DAY_MS, demand_factor=0.5),
            OperatingChange(start + 4 * DAY_MS, standby=False)]
    before = float(device.model.demand_max)
    hourly = run_devices([device], {}, start, 6 * 24, 1200, thresholds=False, changes={device.id: week})[device.id]
    flow = hourly.avg["flow"].reshape(6, 24).sum(axis=1)
    assert flow[0] > 100
    assert flow[1] > 100
    assert flow[2] == 0  # standby: the partner serves the pair
    assert flow[3] < 0.05 * flow[1]  # (its last sample, at midnight, is the hand-over back)
    assert flow[4] > 0.3 * flow[1]
    assert float(device.model.demand_max) == pytest.approx(0.5 * before)


def test_channels_of_one_fault_open_one_work_order() -> None:
    """The evaluation counts work orders as the product opens them: one alarm per fault, so a
    second channel raising while the first is open adds none; after both cleared, a new one does."""
    from cloud.analytics.detection import Detection

    store = DeviceStore()

    def add(detector: str, fault: str, detected_h: int, cleared_h: int | None) -> None:
        det = Detection("p1", detector, fault, 0, detected_h * HOUR_MS)
        store.rows[(detector, det.detected_ms)] = det
        store.cleared[(detector, det.detected_ms)] = None if cleared_h is None else cleared_h * HOUR_MS

    add("pump.current_excess", "bearing_wear", 10, 40)
    add("pump.current_excess_slow", "bearing_wear", 10, 30)  # same hour, other channel
    add("pump.current_excess_slow", "bearing_wear", 20, 50)  # while the first is open
    add("pump.flow_excess", "pressure_loss", 20, None)  # another fault: its own order
    add("pump.current_excess", "bearing_wear", 60, None)  # all wear cleared before: a new order
    assert [(d.detector, d.detected_ms // HOUR_MS) for d in store.work_orders()] == [
        ("pump.current_excess", 10), ("pump.flow_excess", 20), ("pump.current_excess", 60)]


def test_negative_leads_name_their_fleet_pump_and_channel() -> None:
    """A detection after the hard threshold is a negative lead (counted as late); the JSON names
    the fleet, device and first channel of each, so the full run says where to look (issue 15)."""
    from bench.analytics_product import FleetOutcome
    from cloud.analytics.detection import Detection
    from simulators.labelled_fleet import FaultLabel

    late = FaultLabel("b5-pump-2", "pressure_loss", 0, 100 * HOUR_MS, True, 10 * HOUR_MS)
    early = FaultLabel("b1-pump-1", "pressure_loss", 0, 100 * HOUR_MS, True, 40 * HOUR_MS)
    detections = [Detection("b5-pump-2", "pump.duty_excess", "pressure_loss", 0, 15 * HOUR_MS),
                  Detection("b1-pump-1", "pump.night_flow_excess", "pressure_loss", 0, 4 * HOUR_MS)]
    scored = {"b5-pump-2": (0, 200 * HOUR_MS), "b1-pump-1": (0, 200 * HOUR_MS)}
    outcome = FleetOutcome([late, early], detections, scored, [], {})
    figures = summarise([("winter", 100, outcome)], seeds=1, starts=1, devices=2, days=9)
    assert figures["negative_leads"] == 1
    assert figures["negative_lead_cases"] == "100/winter/b5-pump-2/pressure_loss/pump.duty_excess/-5.0h"


def test_variant_false_work_orders_are_split_by_channel_beside_their_counts() -> None:
    """The setpoint, demand and standby false work orders keep their counts and get a
    ``..._by_channel`` string beside them, counted the same way (issue 15): after the change for
    the operating variants, every unmatched one on a standby pump."""
    from bench.analytics_product import FleetOutcome, Variant
    from cloud.analytics.detection import Detection

    def det(device: str, channel: str, hour: int) -> Detection:
        return Detection(device, f"pump.{channel}", "dry_run", 0, hour * HOUR_MS)

    detections = [det("b1-pump-1", "current_deficit", 5),  # before the setpoint change: not counted
                  det("b1-pump-1", "current_deficit", 30), det("b1-pump-1", "flow_excess", 40),
                  det("b1-pump-1", "current_deficit", 90),
                  det("b2-pump-1", "night_flow_excess", 50),
                  det("b3-pump-1", "duty_excess", 60), det("b3-pump-1", "flow_excess", 70)]
    scored = dict.fromkeys(("b1-pump-1", "b2-pump-1", "b3-pump-1"), (0, 200 * HOUR_MS))
    outcome = FleetOutcome([], detections, scored, [Variant("b1-pump-1", "setpoint", 20 * HOUR_MS),
                                                    Variant("b2-pump-1", "demand", 20 * HOUR_MS)], {},
                           standby=["b3-pump-1"])
    figures = summarise([("winter", 100, outcome)], seeds=1, starts=1, devices=3, days=9)
    assert figures["setpoint_change_false_work_orders"] == 3
    assert figures["setpoint_change_false_work_orders_by_channel"] == "pump.current_deficit:2 pump.flow_excess:1"
    assert figures["demand_change_false_work_orders"] == 1
    assert figures["demand_change_false_work_orders_by_channel"] == "pump.night_flow_excess:1"
    assert figures["standby_false_work_orders"] == 2
    assert figures["standby_false_work_orders_by_channel"] == "pump.duty_excess:1 pump.flow_excess:1"
