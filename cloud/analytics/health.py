"""The equipment health record of one device and its 0–100 health score.

Figures per kind (over the record's window, from the hourly rollup):

- elevator: trips, door cycles, door cycles per trip, running hours, mean trip time, faults by type,
  entrapments;
- pump: starts, stops, run hours, duty cycle, mean current while running, mean current per bar
  of outlet pressure, faults (drive trips);
- gate: passages in/out, forced-open and held-open events, tamper events;
- meter: energy last 24 h and per day, against the baseline's normal day (ratio), phase-loss events.

Health score (documented in ``docs/analytics.md``)::

    score = 100 − Σ deductions, clamped to 0..100
      open anomaly detection              −20 each (at most −40)
      fault episodes in the window        −5 each  (at most −25); entrapment −15 each (at most −30)
      data availability a < 95 %          −round(40 × (0.95 − a))
      kind-specific wear indicator:
        pump   mean current vs normal     −min(20, 200 × max(0, ratio − 1.03))
        meter  energy vs normal day       −10 when |ratio − 1| > 0.15 (the cost-control band)
        lift   door cycles per trip       −min(15, 10 × max(0, (dpt − normal) / normal − 0.1) × 10)

Each deduction is stored with its reason, so the device page can say *why* a pump scores 62.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from cloud.analytics.detectors.elevator import FAULT_CODES
from cloud.analytics.detectors.flags import code_present, episode_count, flag_present
from cloud.analytics.frames import HourlyFrame, counter_increase


@dataclass(slots=True)
class HealthRecord:
    figures: dict[str, Any]
    score: int
    deductions: list[dict[str, Any]] = field(default_factory=list)


def _total(values: np.ndarray[Any, Any]) -> float | None:
    return None if np.isnan(values).all() else round(float(np.nansum(values)), 3)


def _mean(values: np.ndarray[Any, Any]) -> float | None:
    return None if np.isnan(values).all() else round(float(np.nanmean(values)), 4)


def figures_for(frame: HourlyFrame, baseline: Mapping[str, Any] | None) -> dict[str, Any]:
    """The per-kind counters and derived figures of the record."""
    figures: dict[str, Any] = {"hours": frame.hours}
    present = np.zeros(frame.hours, dtype=bool)
    for column in frame.avg.values():
        present |= ~np.isnan(column)
    figures["availability"] = round(float(present.mean()), 4) if frame.hours else 0.0
    # "not judged: holiday" — hours the occupancy channels (passages, trips, energy, flow) left out
    # because the community's calendar has them as a holiday or a make-up workday (issue 15)
    figures["hours_not_judged_holiday"] = int(frame.off_hours().sum())
    if frame.kind == "elevator":
        trips = counter_increase(frame, "run_count")
        doors = counter_increase(frame, "door_cycles")
        figures["trips"] = _total(trips)
        figures["door_cycles"] = _total(doors)
        trips_total = np.nansum(trips)
        figures["door_cycles_per_trip"] = round(float(np.nansum(doors) / trips_total), 3) if trips_total else None
        figures["running_hours"] = _total(counter_increase(frame, "run_hours"))
        if figures["running_hours"] and trips_total:
            figures["mean_trip_seconds"] = round(3600.0 * figures["running_hours"] / float(trips_total), 1)
        faults = {name: episode_count(code_present(frame, "fault_code", code)) for name, code in FAULT_CODES.items()}
        figures["faults"] = {k: v for k, v in faults.items() if v}
        figures["entrapments"] = faults.get("passengers_trapped", 0)
    elif frame.kind == "pump":
        starts = counter_increase(frame, "start_count")
        figures["starts"] = _total(starts)
        figures["stops"] = figures["starts"]  # a booster set stops once per start (sleep or trip)
        running = frame.column("running")
        figures["run_hours"] = _total(counter_increase(frame, "run_hours")) or _total(running)
        figures["duty_cycle"] = _mean(running)
        with np.errstate(invalid="ignore", divide="ignore"):
            current_run = np.where(running > 0.05, frame.column("current") / running, np.nan)
            pressure = frame.column("outlet_pressure")
            per_bar = np.where(pressure > 0.5, current_run / pressure, np.nan)
        figures["mean_current_running_a"] = _mean(current_run)
        figures["mean_current_per_bar"] = _mean(per_bar)
        trips = (frame.column("fault_code", "max") > 0).astype(np.float64)
        figures["faults"] = {"drive_trip": episode_count(trips)} if episode_count(trips) else {}
        if baseline and baseline.get("current_normal") and figures["mean_current_running_a"]:
            normal = float(baseline["current_normal"])
            figures["current_vs_normal"] = round(figures["mean_current_running_a"] / normal, 4)
    elif frame.kind == "gate":
        figures["passages_in"] = _total(counter_increase(frame, "passages_in"))
        figures["passages_out"] = _total(counter_increase(frame, "passages_out"))
        figures["forced_open_events"] = episode_count(flag_present(frame, "forced_open"))
        figures["held_open_events"] = episode_count(flag_present(frame, "held_open"))
        figures["tamper_events"] = episode_count(flag_present(frame, "tamper"))
    elif frame.kind == "meter":
        energy = counter_increase(frame, "energy_import")
        figures["energy_kwh"] = _total(energy)
        last_day = energy[-24:]
        figures["energy_last_24h_kwh"] = _total(last_day)
        days = frame.hours / 24
        figures["energy_per_day_kwh"] = round(float(np.nansum(energy)) / days, 3) if days >= 1 else None
        normal_day = float(baseline.get("daily_kwh") or 0) if baseline else 0.0
        if normal_day > 0 and figures["energy_last_24h_kwh"] is not None:
            figures["energy_normal_day_kwh"] = round(normal_day, 3)
            figures["energy_vs_normal"] = round(figures["energy_last_24h_kwh"] / normal_day, 4)
    return figures


def health_record(frame: HourlyFrame, baseline: Mapping[str, Any] | None,
                  open_detections: Sequence[Mapping[str, Any]] = ()) -> HealthRecord:
    figures = figures_for(frame, baseline)
    figures["open_detections"] = list(open_detections)
    deductions: list[dict[str, Any]] = []

    def deduct(points: float, reason: str) -> None:
        if points >= 0.5:
            deductions.append({"points": round(points), "reason": reason})

    deduct(min(40, 20 * len(open_detections)), f"{len(open_detections)} open anomaly detection(s)")
    faults: dict[str, int] = figures.get("faults", {}) or {}
    entrapments = int(figures.get("entrapments") or 0)
    others = sum(faults.values()) - entrapments
    deduct(min(25, 5 * others), f"{others} fault episode(s) in the window")
    deduct(min(30, 15 * entrapments), f"{entrapments} entrapment(s)")
    availability = float(figures.get("availability") or 0.0)
    if frame.hours:
        deduct(40 * max(0.0, 0.95 - availability), f"data availability {availability:.0%}")
    ratio = figures.get("current_vs_normal")
    if ratio is not None:
        deduct(min(20, 200 * max(0.0, ratio - 1.03)), f"pump draws {ratio - 1:+.0%} current vs normal")
    energy = figures.get("energy_vs_normal")
    if energy is not None and abs(energy - 1) > 0.15:
        deduct(10, f"energy {energy - 1:+.0%} vs normal day (beyond the 15 % band)")
    dpt = figures.get("door_cycles_per_trip")
    normal_dpt = float(baseline.get("doors_per_trip") or 0) if baseline else 0.0
    if dpt is not None and normal_dpt > 0:
        excess = (dpt - normal_dpt) / normal_dpt - 0.1
        deduct(min(15, 100 * max(0.0, excess)), f"door cycles per trip {dpt:.2f} vs {normal_dpt:.2f}")
    score = int(max(0, min(100, round(100 - sum(d["points"] for d in deductions)))))
    return HealthRecord(figures, score, deductions)
