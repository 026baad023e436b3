"""The labelled evaluation of the anomaly detectors: train, calibrate and score simulated fleets.

- :func:`fit_baselines`: each device's "normal" from its own training window;
- :func:`calibrate`: fleet-level alarm limits from the statistics of fault-free hours (hours
  inside a known fault window, plus a grace period, are left out — that is what the training
  fleet's labels are for);
- :func:`score`: detections raised in the scoring window, with the calibrated limits.

The evaluation (:func:`run_evaluation`) calibrates on one simulated fleet and scores another
with a different seed, so the limits never saw the faults they are scored on. Its calibrated limits
are what ``cloud/analytics/limits.json`` ships (``python -m bench analytics-eval --write-limits``).

This is the harness beside the product (it was ``cloud/analytics/pipeline.py``; the product's jobs
drive the detectors themselves): it is the one place that sees both the simulators' labelled fleet
(:mod:`simulators.labelled_fleet`, hourly aggregates + ground truth) and the cloud's detectors, so
the aggregates become :class:`~cloud.analytics.frames.HourlyFrame` here (:func:`frame_of`).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.analytics_scoring import Report, evaluate
from cloud.analytics.detection import Detection
from cloud.analytics.detectors import DETECTORS, Detector, Params
from cloud.analytics.errors import NotEnoughData
from cloud.analytics.frames import DAY_MS, HOUR_MS, Array, HourlyFrame
from simulators import labelled_fleet
from simulators.labelled_fleet import FaultLabel, HourlyAggregates, PlannedFault, simulate

log = logging.getLogger(__name__)

GRACE_MS = 12 * HOUR_MS
SETTLE_MS = 3 * DAY_MS
"""Calibration leaves out this long after a fault ends (the trailing 3-day sums still see it)."""


def frame_of(hourly: HourlyAggregates) -> HourlyFrame:
    """The simulated aggregates as the frame the detectors read (the same columns, no copy)."""
    return HourlyFrame(device=hourly.device, kind=hourly.kind, start_ms=hourly.start_ms, hours=hourly.hours,
                       avg=hourly.avg, min=hourly.min, max=hourly.max, community=hourly.community)


def single_device(kind: str, device_id: str, **options: Any) -> tuple[HourlyFrame, list[PlannedFault]]:
    """:func:`simulators.labelled_fleet.single_device` as a frame (for the detector tests)."""
    hourly, faults = labelled_fleet.single_device(kind, device_id, **options)
    return frame_of(hourly), faults


def fit_baselines(frames: Iterable[HourlyFrame], train_end_ms: int,
                  fleet_params: Mapping[str, Params] | None = None) -> dict[str, Params]:
    """Device id → baseline fitted on the device's hours before ``train_end_ms``."""
    out: dict[str, Params] = {}
    for frame in frames:
        detector = DETECTORS.get(frame.kind)
        if detector is None:
            continue
        window = frame.window(frame.start_ms, train_end_ms)
        try:
            out[frame.device] = detector.fit_baseline(window, (fleet_params or {}).get(frame.kind, {}))
        except NotEnoughData as exc:
            log.info("no baseline: %s", exc)
    return out


def _fault_free_mask(frame: HourlyFrame, labels: Iterable[FaultLabel]) -> Array:
    times = frame.times_ms
    keep = np.ones(frame.hours, dtype=bool)
    for label in labels:
        keep &= ~((times >= label.start_ms - HOUR_MS) & (times <= label.end_ms + SETTLE_MS))
    return keep.astype(np.float64)


def calibrate(frames: Iterable[HourlyFrame], baselines: Mapping[str, Params], labels: Iterable[FaultLabel],
              score_from_ms: int) -> dict[str, Params]:
    """Kind → fleet params (limits) from the fault-free statistics after ``score_from_ms``."""
    by_device: dict[str, list[FaultLabel]] = {}
    for label in labels:
        by_device.setdefault(label.device, []).append(label)
    gathered: dict[str, dict[str, list[Array]]] = {}
    for frame in frames:
        detector = DETECTORS.get(frame.kind)
        baseline = baselines.get(frame.device)
        if detector is None or baseline is None:
            continue
        scored = detector.statistics(frame, baseline, detector.hyper())
        keep = _fault_free_mask(frame, by_device.get(frame.device, ())) > 0
        keep &= frame.times_ms >= score_from_ms
        per_kind = gathered.setdefault(frame.kind, {})
        for name, stat in scored.stats.items():
            per_kind.setdefault(name, []).append(np.where(keep, stat, np.nan)[frame.times_ms >= score_from_ms])
    return {kind: DETECTORS[kind].calibrate(stats) for kind, stats in gathered.items()}


def score(frames: Iterable[HourlyFrame], baselines: Mapping[str, Params], fleet_params: Mapping[str, Params],
          score_from_ms: int) -> list[Detection]:
    found: list[Detection] = []
    for frame in frames:
        detector: Detector | None = DETECTORS.get(frame.kind)
        baseline = baselines.get(frame.device)
        if detector is None or baseline is None:
            continue
        found += detector.score(frame, baseline, fleet_params.get(frame.kind, {}), from_ms=score_from_ms)
    return found


@dataclass(slots=True)
class EvaluationResult:
    report: Report
    fleet_params: dict[str, Params]
    devices: int
    simulated_days: int
    train_seed: int
    eval_seed: int
    train_labels: int


def run_evaluation(*, devices: int = 220, days: int = 42, warmup_days: int = 14, train_seed: int = 1,
                   eval_seed: int = 2, train_devices: int | None = None, step_s: int = 1200) -> EvaluationResult:
    """Calibrate on a training fleet (``train_seed``), score a separate fleet (``eval_seed``)."""
    if train_seed == eval_seed:
        raise ValueError("the training and the evaluation fleet need different seeds (an honest score)")
    train = simulate(train_devices or devices, days, seed=train_seed, warmup_days=warmup_days, step_s=step_s,
                     thresholds=False)
    train_frames = [frame_of(hourly) for hourly in train.hourly.values()]
    train_end = train.start_ms + warmup_days * DAY_MS
    train_baselines = fit_baselines(train_frames, train_end)
    fleet_params = calibrate(train_frames, train_baselines, train.labels, train_end)
    log.info("calibrated limits: %s", {k: v.get("limits") for k, v in fleet_params.items()})

    run = simulate(devices, days, seed=eval_seed, warmup_days=warmup_days, step_s=step_s)
    frames = [frame_of(hourly) for hourly in run.hourly.values()]
    eval_end = run.start_ms + warmup_days * DAY_MS
    baselines = fit_baselines(frames, eval_end, fleet_params)
    detections = score(frames, baselines, fleet_params, eval_end)
    scored = dict.fromkeys(baselines, (eval_end, run.start_ms + days * DAY_MS))
    report = evaluate(run.labels, detections, scored=scored, grace_ms=GRACE_MS)
    return EvaluationResult(report, fleet_params, len(run.hourly), days, train_seed, eval_seed, len(train.faults))
