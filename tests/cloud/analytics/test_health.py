"""The equipment health record and its score on simulated devices."""

from __future__ import annotations

from bench.analytics_eval import single_device
from cloud.analytics.detectors import DETECTORS
from cloud.analytics.frames import DAY_MS
from cloud.analytics.health import health_record

START_MS = 1_767_225_600_000


def test_elevator_record_counts_trips_doors_and_entrapments() -> None:
    frame, _ = single_device("elevator", "b1-elevator-1", days=3, seed=2, fault="passengers_trapped",
                             fault_start_day=2.3, fault_params={})
    healthy = health_record(frame.window(START_MS, START_MS + 2 * DAY_MS), None)
    assert healthy.score == 100
    assert healthy.figures["trips"] > 50
    assert healthy.figures["door_cycles"] >= healthy.figures["trips"] * 0.5
    assert healthy.figures["entrapments"] == 0
    record = health_record(frame, None)
    assert record.figures["entrapments"] == 1
    assert record.score == 85
    assert record.deductions == [{"points": 15, "reason": "1 entrapment(s)"}]


def test_gate_and_meter_records() -> None:
    gate, _ = single_device("gate", "b1-gate-1", days=2, seed=3, fault="forced_open", fault_start_day=1.5,
                            fault_params={})
    record = health_record(gate, None)
    assert record.figures["passages_in"] > 0
    assert record.figures["forced_open_events"] == 1
    meter, _ = single_device("meter", "b1-meter-1", days=9, seed=3)
    detector = DETECTORS["meter"]
    baseline = detector.fit_baseline(meter.window(START_MS, START_MS + 8 * DAY_MS), detector.hyper())
    record = health_record(meter.window(START_MS + 8 * DAY_MS, START_MS + 9 * DAY_MS), baseline)
    assert 0.8 < record.figures["energy_vs_normal"] < 1.2
    assert record.score == 100


def test_open_detections_and_missing_data_lower_the_score() -> None:
    pump, _ = single_device("pump", "b1-pump-1", days=2, seed=3)
    pump.avg["current"][:12] = float("nan")
    for table in (pump.avg, pump.min, pump.max):
        for column in table.values():
            column[:12] = float("nan")
    record = health_record(pump, None, [{"detector": "pump.current_excess", "fault": "bearing_wear", "message": ""}])
    reasons = [d["reason"] for d in record.deductions]
    assert "1 open anomaly detection(s)" in reasons
    assert any(r.startswith("data availability") for r in reasons)
    assert record.score < 80
    assert record.figures["starts"] is not None
