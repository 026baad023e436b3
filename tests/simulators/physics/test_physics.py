"""Device physics as pure logic: daily curves, control loops, counters and faults (no network)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from device_profiles import find_profile
from simulators.physics import model_for
from simulators.physics.base import DAY
from simulators.physics.elevator import ElevatorModel
from simulators.physics.gate import GateModel
from simulators.physics.meter import MeterModel
from simulators.physics.pump import PumpModel

# 2026-11-23 00:00 China time (a Monday)
MIDNIGHT = 1_795_363_200.0  # datetime(2026, 11, 23, tzinfo=UTC+8).timestamp()


def _model(profile: str, t0: float = MIDNIGHT, **params: object) -> object:
    return model_for("dev", find_profile(profile), np.random.default_rng(7), t0, params)


def _run(model: object, seconds: float, step: float) -> None:
    assert hasattr(model, "advance_to")
    t = model.t  # type: ignore[attr-defined]
    end = t + seconds
    while t < end:
        t = min(end, t + step)
        model.advance_to(t)


def test_meter_daily_curve_and_energy_integrates_power() -> None:
    meter = _model("eastron-sdm630")
    assert isinstance(meter, MeterModel)
    night: list[float] = []
    evening: list[float] = []
    kwh: list[float] = []
    for hour in range(48):
        _run(meter, 3600, 60)
        values = meter.values()
        kwh.append(float(values["energy_import"]))
        bucket = night if hour % 24 in (2, 3, 4) else evening if hour % 24 in (19, 20, 21) else []
        bucket.append(float(values["power_total"]))
        assert 220 < float(values["voltage_l1"]) < 240
        assert 49.8 < float(values["frequency"]) < 50.2
        assert -1 <= float(values["power_factor"]) <= 1
    assert np.mean(evening) > 1.8 * np.mean(night)
    assert all(b > a for a, b in itertools.pairwise(kwh))
    # energy over two days ≈ the integral of the power readings (same physics, no noise injected)
    assert kwh[-1] - kwh[0] == pytest.approx(meter.base_kw * 47 * 0.58, rel=0.35)
    phases = [float(meter.values()[f"power_l{n}"]) for n in (1, 2, 3)]
    assert max(phases) != min(phases)   # per-phase imbalance


def test_meter_faults() -> None:
    meter = _model("eastron-sdm630", base_kw=20.0)
    assert isinstance(meter, MeterModel)
    _run(meter, 3600, 60)
    meter.set_fault("phase_loss", True, {"phase": 2})
    values = meter.values()
    assert float(values["voltage_l2"]) < 1.0
    assert values["current_l2"] == 0.0
    assert float(values["voltage_l1"]) > 200
    meter.set_fault("phase_loss", False)
    before = float(meter.values()["power_total"])
    meter.set_fault("energy_drift", True, {"percent": 20})
    assert float(meter.values()["power_total"]) == pytest.approx(before * 1.2, rel=1e-6)


def test_pump_holds_pressure_and_cycles() -> None:
    pump = _model("vfd-pump", t0=MIDNIGHT + 7 * 3600)
    assert isinstance(pump, PumpModel)
    _run(pump, 600, 0.5)
    values = pump.values()
    assert values["running"] is True
    assert float(values["outlet_pressure"]) == pytest.approx(4.0, abs=0.2)
    assert 25 <= float(values["frequency"]) <= 50
    assert float(values["current"]) > 0
    assert float(values["power"]) > 0
    starts = int(values["start_count"])
    _run(pump, DAY, 60)   # a day at coarse steps: the quasi-static path
    assert int(pump.values()["start_count"]) > starts
    assert float(pump.values()["run_hours"]) > float(values["run_hours"])


def test_pump_dry_run_trips_and_resets() -> None:
    pump = _model("vfd-pump", t0=MIDNIGHT + 8 * 3600, auto_reset_s=0)
    assert isinstance(pump, PumpModel)
    _run(pump, 120, 0.5)
    pump.set_fault("dry_run", True)
    _run(pump, 60, 0.5)
    values = pump.values()
    assert int(values["pump_alarms"]) & 1
    assert values["fault_code"] == 0x9000
    assert int(values["status_word"]) & (1 << 3)       # tripped
    assert values["running"] is False
    pump.set_fault("dry_run", False)
    _run(pump, 5, 0.5)
    assert pump.values()["fault_code"] == 0x9000        # stays tripped until reset
    pump.write("fault_reset", True)
    _run(pump, 30, 0.5)
    assert pump.values()["fault_code"] == 0


def test_pump_bearing_wear_creeps_current_up_over_days() -> None:
    pump = _model("vfd-pump", t0=MIDNIGHT + 7 * 3600)
    healthy = _model("vfd-pump", t0=MIDNIGHT + 7 * 3600)
    assert isinstance(pump, PumpModel)
    assert isinstance(healthy, PumpModel)
    pump.set_fault("bearing_wear", True, {"percent_per_day": 5})
    _run(pump, 5 * DAY, 600)
    _run(healthy, 5 * DAY, 600)
    pump.demand_noise = healthy.demand_noise = 1.0
    _run(pump, 60, 0.5)
    _run(healthy, 60, 0.5)
    assert float(pump.values()["current"]) > 1.15 * float(healthy.values()["current"])


def test_pump_pressure_loss_raises_low_pressure_alarm() -> None:
    pump = _model("vfd-pump", t0=MIDNIGHT + 10 * 3600)
    assert isinstance(pump, PumpModel)
    _run(pump, 60, 0.5)
    pump.set_fault("pressure_loss", True, {"leak_m3h": 40})
    _run(pump, 60, 0.5)
    values = pump.values()
    assert float(values["outlet_pressure"]) < 3.0
    assert float(values["frequency"]) == pytest.approx(50.0, abs=0.5)
    assert int(values["pump_alarms"]) & (1 << 2)


def test_elevator_trips_counters_and_peaks() -> None:
    lift = _model("elevator-gbt24476", t0=MIDNIGHT)
    assert isinstance(lift, ElevatorModel)
    runs0, doors0 = lift.run_count, lift.door_cycles
    floors = set()
    moving = 0
    night_runs = 0
    for second in range(0, 24 * 3600, 5):
        lift.advance_to(MIDNIGHT + second)
        v = lift.values()
        floors.add(v["floor"])
        moving += bool(v["car_moving"])
        if second == 5 * 3600:
            night_runs = lift.run_count - runs0
    assert lift.run_count - runs0 > 200
    assert lift.door_cycles - doors0 > lift.run_count - runs0
    assert night_runs < (lift.run_count - runs0) / 10   # the small hours are quiet
    assert len(floors) > 5
    assert 0 not in floors
    assert moving > 0


def test_elevator_trapped_passengers() -> None:
    lift = _model("elevator-gbt24476", t0=MIDNIGHT + 8 * 3600)
    assert isinstance(lift, ElevatorModel)
    _run(lift, 300, 1)
    lift.set_fault("passengers_trapped", True)
    _run(lift, 600, 1)
    v = lift.values()
    assert v["fault_code"] == 1
    assert int(v["alarm_word"]) & 1
    assert v["car_moving"] is False
    assert v["in_door_zone"] is False
    assert v["passenger_present"] is True
    assert v["door_state"] == 0
    runs = lift.run_count
    _run(lift, 600, 1)
    assert lift.run_count == runs   # a stuck car does not run
    lift.set_fault("passengers_trapped", False)
    _run(lift, 1200, 1)
    assert lift.values()["fault_code"] == 0
    assert lift.run_count > runs


def test_elevator_out_of_service_command() -> None:
    lift = _model("elevator-gbt24476", t0=MIDNIGHT + 8 * 3600)
    assert isinstance(lift, ElevatorModel)
    lift.write("service_command", 6)
    _run(lift, 120, 1)
    runs = lift.run_count
    _run(lift, 1800, 1)
    assert lift.values()["service_mode"] == 6
    assert lift.run_count == runs


def test_gate_passages_peak_in_the_evening() -> None:
    gate = _model("access-gate", t0=MIDNIGHT)
    assert isinstance(gate, GateModel)
    counts = []
    for _ in range(24):
        before = gate.passages_in
        _run(gate, 3600, 10)
        counts.append(gate.passages_in - before)
    assert counts[18] > 4 * counts[3]
    gate.set_fault("forced_open", True)
    v = gate.values()
    assert v["forced_open"] is True
    assert v["door_state"] == 1
    assert v["last_event"] == 102


def test_example_fleet_and_scenario_are_valid() -> None:
    from pathlib import Path

    from simulators import load_fleet, load_scenario

    examples = Path(__file__).resolve().parents[3] / "simulators" / "examples"
    fleet = load_fleet(examples / "community.yaml")
    scenario = load_scenario(examples / "faults.yaml", fleet)
    assert len(fleet.devices) == 11
    assert len(scenario.faults) == 7
