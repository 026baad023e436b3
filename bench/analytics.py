"""``python -m bench analytics``: the product-path evaluation of predictive maintenance (issue 15).

Runs the service's own schedule — daily gated retraining (:mod:`cloud.analytics.retrain`) and
6-hour scoring passes on the fixed time grid (:mod:`cloud.analytics.timeline`) — over evaluation
fleets of several seeds × start dates (winter, the Spring Festival week, summer, the October
holidays) with variants the calibration never saw (slow wear, setpoint and demand changes, sensor
offset and noise, missing hours, nuisance fault codes, a repair and a second fault, duty/standby
alternation of pump pairs):
:mod:`bench.analytics_product`. Keys (``../shared/targets.json``
"analytics"): ``seeds``, ``start_times``, ``devices``, ``simulated_days``, ``inferred_recall`` and
its Wilson ``_low95``, ``precision``, ``false_alarms_per_device_week`` (Poisson interval keys
beside it), ``slow_wear_lead_hours_median``, ``negative_leads``,
``setpoint_change_false_work_orders``, ``demand_change_false_work_orders``,
``nuisance_code_false_work_orders``, ``false_alarms_after_repair``, ``second_fault_recall``,
``standby_false_work_orders`` (the setpoint, demand and standby counts also split by channel in
``..._by_channel``: ``"pump.current_deficit:17 pump.flow_excess:2"``), plus per fault kind
recall with intervals and the lead-time distribution.

The one-pass evaluation on a single seed (and the calibration of ``limits.json``) is
``python -m bench analytics-eval``.
"""

from __future__ import annotations

import time


def run(quick: bool = False) -> dict[str, float | int | str | bool]:
    from bench.analytics_product import run_product_evaluation

    started = time.perf_counter()
    # one scoring pass per simulated day, right after the daily retrain: the detections do not depend
    # on the step (tests/cloud/analytics/test_timeline.py, tests/bench/test_analytics_product.py), so
    # the service's 15-minute cadence would only cost time here
    if quick:
        figures = run_product_evaluation(seeds=2, devices=30, days=30, step_h=24)
    else:
        figures = run_product_evaluation(seeds=20, devices=200, days=30, step_h=24)
    out: dict[str, float | int | str | bool] = dict(figures)
    out["quick"] = quick
    out["seconds"] = round(time.perf_counter() - started, 1)
    return out
