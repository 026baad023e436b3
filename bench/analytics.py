"""``python -m bench analytics``: the labelled evaluation of the anomaly detectors.

Calibrates the detectors on a simulated training fleet (seed 1) and scores a separate fleet
(seed 2) of ≥200 devices over ≥30 simulated days, driven through the simulators' own physics and
fault models (:mod:`simulators.labelled_fleet`). Keys: ``devices``, ``simulated_days``,
``precision``, ``recall``, ``false_alarms_per_device_week``, ``gradual_lead_hours_mean`` plus
per-fault-kind ``{kind}_precision/_recall/_labels/_false_alarms/_lead_hours_mean``. The
baseline measured in the same run is the hard-threshold rule itself: every lead time is the
time between our detection and that rule's first firing on the same simulated samples.
"""

from __future__ import annotations

import time


def run(quick: bool = False) -> dict[str, float | int | bool]:
    from bench.analytics_eval import run_evaluation

    started = time.perf_counter()
    if quick:
        result = run_evaluation(devices=60, days=32, train_devices=60)
    else:
        result = run_evaluation(devices=220, days=42, train_devices=160)
    figures: dict[str, float | int | bool] = {
        "devices": result.devices,
        "simulated_days": result.simulated_days,
        "train_seed": result.train_seed,
        "eval_seed": result.eval_seed,
    }
    figures.update(result.report.flat())
    figures["seconds"] = round(time.perf_counter() - started, 1)
    return figures
