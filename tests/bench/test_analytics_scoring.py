"""The evaluation harness scores what it should: perfect, silent and noisy detectors."""

from __future__ import annotations

import pytest

from bench.analytics_scoring import WEEK_MS, evaluate, render_table
from cloud.analytics.detection import Detection
from cloud.analytics.frames import DAY_MS, HOUR_MS
from simulators.labelled_fleet import FaultLabel

DAYS = 28
SCORED = {f"dev-{i}": (0, DAYS * DAY_MS) for i in range(10)}
LABELS = [
    FaultLabel("dev-0", "bearing_wear", 5 * DAY_MS, DAYS * DAY_MS, gradual=True, threshold_ms=20 * DAY_MS),
    FaultLabel("dev-1", "dry_run", 10 * DAY_MS, 10 * DAY_MS + 2 * HOUR_MS),
    FaultLabel("dev-2", "energy_drift", 3 * DAY_MS, 25 * DAY_MS, gradual=True, threshold_ms=None),
    FaultLabel("dev-3", "phase_loss", 7 * DAY_MS, 7 * DAY_MS + HOUR_MS),
]


def perfect() -> list[Detection]:
    return [Detection(lb.device, "oracle", lb.fault, lb.start_ms, lb.start_ms + HOUR_MS) for lb in LABELS]


def test_perfect_detector_scores_one() -> None:
    report = evaluate(LABELS, perfect(), scored=SCORED)
    assert report.precision == 1.0
    assert report.recall == 1.0
    assert report.false_alarms == 0
    assert report.false_alarms_per_device_week == 0.0
    assert report.kind_correct == len(LABELS)
    # bearing wear: detected 1 h after onset on day 5, threshold on day 20 → 15 days - 1 h
    assert report.gradual_lead_hours_mean == pytest.approx(15 * 24 - 1)
    assert report.by_kind["energy_drift"].threshold_never_fired == 1
    assert "| **overall** | 4 | 4 | 1.000 | 1.000 | 0 |" in render_table(report)


def test_silent_detector_has_zero_recall_and_no_false_alarms() -> None:
    report = evaluate(LABELS, [], scored=SCORED)
    assert report.recall == 0.0
    assert report.precision == 1.0  # nothing claimed, nothing wrong
    assert report.false_alarms == 0
    assert len(report.missed) == len(LABELS)
    assert report.gradual_leads_h == []


def test_always_alarming_detector_is_caught_by_precision_and_false_alarm_rate() -> None:
    noisy = [Detection(dev, "panic", "bearing_wear", t, t) for dev in SCORED for t in range(0, DAYS * DAY_MS, DAY_MS)]
    report = evaluate(LABELS, noisy, scored=SCORED)
    assert report.recall == 1.0
    assert report.precision < 0.2
    # 10 devices × 4 weeks minus the labelled stretches; one alarm a day ≈ 7 per device-week
    assert 6.0 < report.false_alarms_per_device_week <= 7.0
    assert report.fault_free_device_weeks < 10 * DAYS * DAY_MS / WEEK_MS


def test_detection_before_onset_or_after_grace_does_not_match() -> None:
    early = Detection("dev-1", "x", "dry_run", 9 * DAY_MS, 9 * DAY_MS)
    late = Detection("dev-1", "x", "dry_run", 12 * DAY_MS, 12 * DAY_MS)
    report = evaluate(LABELS, [early, late], scored=SCORED)
    assert report.by_kind["dry_run"].detected == 0
    assert report.false_alarms == 2
    assert report.precision == 0.0


def test_late_detection_gives_negative_lead_and_duplicates_are_not_false_alarms() -> None:
    label = LABELS[0]
    dets = [Detection("dev-0", "x", "bearing_wear", label.start_ms, 21 * DAY_MS),
            Detection("dev-0", "y", "bearing_wear", label.start_ms, 22 * DAY_MS)]
    report = evaluate([label], dets, scored={"dev-0": (0, DAYS * DAY_MS)})
    assert report.gradual_leads_h == [-24.0]
    assert report.false_alarms == 0
    assert report.precision == 1.0


def test_unscored_devices_and_detections_outside_the_window_are_ignored() -> None:
    report = evaluate(LABELS, perfect(), scored={"dev-0": (0, DAYS * DAY_MS)})
    assert report.labels == 1
    assert report.detections == 1
    assert report.devices == 1


def test_the_evaluation_refuses_to_score_on_its_training_seed() -> None:
    from bench.analytics_eval import run_evaluation

    with pytest.raises(ValueError, match="different seeds"):
        run_evaluation(devices=10, days=20, train_seed=4, eval_seed=4)
