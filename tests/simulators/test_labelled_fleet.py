"""The labelled evaluation fleet: the simulators' physics folded into hourly aggregates + ground truth."""

from __future__ import annotations

import numpy as np
import orjson

from cloud.analytics.detectors.meter import COST_RULE_BAND
from simulators.labelled_fleet import COST_CONTROL_BAND, DAY_MS, MIX, labels_jsonl, simulate, single_device


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
