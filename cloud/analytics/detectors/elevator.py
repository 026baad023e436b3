"""Elevators: fault codes by type, and trip / door-time distributions by robust z-scores.

The controller reports sudden faults itself (GB/T 24476 fault items: passengers trapped, door
lock fault, out of leveling …); their hourly presence is the ``fault_*`` channels. Which codes
open a work order is :data:`FAULT_CODES`, on purpose not the profile's whole table: the others
include codes a controller shows for seconds and clears itself (11 floor position lost, re-learnt
on the next trip; 12/13 door open / close fault, which the door operator retries). A lift shows a
few of those a week; a work order for each would teach the butler to ignore the lift's orders
(issue 15's nuisance-code variant counts them: ``nuisance_code_false_work_orders``). A watched
code counts in an hour only if it was shown for :data:`CODE_HOLD_S` of it (the edge rules' hold).
The health record still shows every code. What it does
not report is a lift that is *getting worse*: doors that need more open/close cycles per trip
(a dirty sill, a misadjusted door operator, a light curtain that keeps re-opening) or that stops
serving its usual traffic. Those are the ``doors_per_trip`` and ``trips_missing`` channels:
robust z-scores against the same hour-of-week of the lift's training window (median and MAD,
so the weekday rush hours do not look anomalous), smoothed over a few hours.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from cloud.analytics.detectors.base import Channel, Detector, Params, Scored
from cloud.analytics.detectors.flags import code_present
from cloud.analytics.errors import NotEnoughData
from cloud.analytics.features import ewma, hour_of_week, robust_center_scale, seasonal_profile
from cloud.analytics.frames import HourlyFrame, counter_increase, occupancy

FAULT_CODES: dict[str, int] = {
    "passengers_trapped": 1,
    "door_lock_fault": 2,
    "door_open_while_moving": 3,
    "overspeed": 5,
    "out_of_leveling": 8,
}
"""``fault_code`` enum values of the elevator-gbt24476 profile watched as their own fault kinds."""

CODE_HOLD_S = 60.0
"""A watched code shown for less than this in an hour (by the hour's mean) opens nothing: the
``hold: 60s`` of the shipped ``elevator-*`` edge rules, so a door-lock contact that bounces for
seconds is not a work order on the analytics path either."""

FAULT_WORDS_ZH: dict[str, str] = {
    "passengers_trapped": "有人被困",
    "door_lock_fault": "门锁回路故障",
    "door_open_while_moving": "开门运行",
    "overspeed": "轿厢超速",
    "out_of_leveling": "轿厢停在平层区外（平层故障）",
}

FAULT_WORDS: dict[str, str] = {
    "passengers_trapped": "passengers are trapped",
    "door_lock_fault": "the door lock circuit faulted",
    "door_open_while_moving": "the car moved with a door open",
    "overspeed": "the car overspeeded",
    "out_of_leveling": "the car stopped outside the door zone (out of leveling)",
}


class ElevatorDetector(Detector):
    name: ClassVar[str] = "elevator"
    kind: ClassVar[str] = "elevator"
    channels: ClassVar[tuple[Channel, ...]] = (
        *(Channel(f"fault_{name}", name, floor=0.5) for name in FAULT_CODES),
        Channel("doors_per_trip", "door_wear", floor=4.0, margin=1.3, min_hours=3, target_rate=0.0),
        Channel("trips_missing", "out_of_service", floor=4.0, margin=1.3, min_hours=3, target_rate=0.0),
    )
    defaults: ClassVar[Params] = {
        "fault_metric": "fault_code",
        "trips_metric": "run_count",
        "doors_metric": "door_cycles",
        "min_training_hours": 5 * 24,
        "ewma_alpha": 0.25,
        "utc_offset_ms": 8 * 3_600_000,
    }

    def fit_baseline(self, frame: HourlyFrame, params: Params) -> Params:
        params = self.hyper(params)
        trips = counter_increase(frame, params["trips_metric"])
        doors = counter_increase(frame, params["doors_metric"])
        valid = int((~np.isnan(trips)).sum())
        if valid < params["min_training_hours"]:
            need = params["min_training_hours"]
            raise NotEnoughData(f"{frame.device}: {valid} hours with a trip counter (need {need})")
        with np.errstate(invalid="ignore", divide="ignore"):
            per_trip = np.where(trips >= 3, doors / trips, np.nan)
        center, scale = robust_center_scale(per_trip, floor=0.02)
        # a holiday's empty building is not a normal week: its hours leave the hour-of-week fit
        median, sigma = seasonal_profile(occupancy(frame, trips), frame.times_ms,
                                         utc_offset_ms=params["utc_offset_ms"])
        return {
            "doors_per_trip": center,
            "doors_per_trip_sigma": scale,
            "trips_hour_of_week": [round(float(v), 4) for v in median],
            "trips_sigma_hour_of_week": [round(float(max(s, 1.0)), 4) for s in sigma],
            "trips_per_day": float(np.nansum(median) / 7.0),
        }

    def statistics(self, frame: HourlyFrame, baseline: Params, params: Params) -> Scored:
        metric = params["fault_metric"]
        stats = {f"fault_{name}": code_present(frame, metric, code, min_seconds=CODE_HOLD_S)
                 for name, code in FAULT_CODES.items()}
        trips = counter_increase(frame, params["trips_metric"])
        doors = counter_increase(frame, params["doors_metric"])
        with np.errstate(invalid="ignore", divide="ignore"):
            per_trip = np.where(trips >= 3, doors / trips, np.nan)
        z_doors = (per_trip - float(baseline["doors_per_trip"])) / float(baseline["doors_per_trip_sigma"])
        slots = hour_of_week(frame.times_ms, params["utc_offset_ms"])
        expected = np.asarray(baseline["trips_hour_of_week"], dtype=np.float64)[slots]
        sigma = np.asarray(baseline["trips_sigma_hour_of_week"], dtype=np.float64)[slots]
        # only busy hours say something about missing trips (3 a.m. has none anyway)
        # holidays and make-up workdays: not judged (door cycles per trip still are: that is the door)
        z_missing = np.where(expected >= 4, (expected - occupancy(frame, trips)) / sigma, np.nan)
        alpha = float(params["ewma_alpha"])
        stats["doors_per_trip"] = ewma(z_doors, alpha)
        stats["trips_missing"] = ewma(z_missing, alpha)
        return Scored(stats=stats, context={"trips": trips, "doors": doors, "doors_per_trip": per_trip,
                                            "expected_trips": expected})

    def explain(self, frame: HourlyFrame, channel: Any, hour: int, scored: Scored, baseline: Params) -> str:
        if channel.name.startswith("fault_"):
            return (f"电梯 {frame.device}：{FAULT_WORDS_ZH[channel.fault]}——请检查电梯 / "
                    f"lift {frame.device}: {FAULT_WORDS[channel.fault]} — inspect the lift")
        ctx = scored.context
        if channel.name == "doors_per_trip":
            per, usual = ctx["doors_per_trip"][hour], baseline["doors_per_trip"]
            return (f"电梯 {frame.device} 每趟开关门 {per:.1f} 次（平时 {usual:.1f} 次）——门反复重开；"
                    f"请检查门机、地坎和光幕 / "
                    f"lift {frame.device} needs {per:.1f} door cycles per trip "
                    f"(usually {usual:.1f}) — doors re-open repeatedly; check the door "
                    f"operator, sill and light curtain")
        lo = max(0, hour - 3)
        trips, usual, hours = np.nansum(ctx["trips"][lo:hour + 1]), np.nansum(ctx["expected_trips"][lo:hour + 1]), \
            hour + 1 - lo
        return (f"电梯 {frame.device} 近 {hours} 小时只运行 {trips:.0f} 趟，平时约 {usual:.0f} 趟——可能停运或卡住 / "
                f"lift {frame.device} made {trips:.0f} trips in the last "
                f"{hours} hours where about {usual:.0f} are usual "
                f"— it may be out of service or stuck")
