"""The vectorised pump bank is the scalar pump model, only faster: same draws, same state."""

from __future__ import annotations

import numpy as np
import pytest

from simulators import labelled_fleet
from simulators.labelled_fleet import (
    DAY_MS,
    FAULTS,
    FleetDevice,
    OperatingChange,
    PlannedFault,
    build_fleet,
    run_device,
    run_devices,
)

START_MS = 1_767_571_200_000  # 2026-01-05 00:00 UTC


def _pumps() -> list[FleetDevice]:
    return [d for d in build_fleet(60, 9, START_MS) if d.kind == "pump"][:5]


def _faults(devices: list[FleetDevice]) -> dict[str, list[PlannedFault]]:
    """One of each pump fault (a ramped leak, wear, a dry run that trips and resets), one healthy."""
    plans = {p.fault: p for p in FAULTS if p.kind == "pump"}
    day = START_MS + DAY_MS
    return {
        devices[0].id: [PlannedFault(devices[0].id, plans["bearing_wear"], day, day + 3 * DAY_MS,
                                     {"percent_per_day": 40.0})],
        devices[1].id: [PlannedFault(devices[1].id, plans["pressure_loss"], day, day + 2 * DAY_MS,
                                     {"leak_max_m3h": 25.0, "ramp_hours": 12.0})],
        devices[2].id: [PlannedFault(devices[2].id, plans["dry_run"], day + 6 * 3_600_000,
                                     day + 8 * 3_600_000, {})],
    }


def test_the_bank_reproduces_the_scalar_model_sample_for_sample(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(labelled_fleet, "BANK_FROM", 2)  # five pumps go through the bank here
    changes = {_pumps()[3].id: [OperatingChange(START_MS + 2 * DAY_MS, setpoint=3.6)],
               _pumps()[4].id: [OperatingChange(START_MS + DAY_MS, demand_factor=1.3)]}
    scalar_devices = _pumps()
    scalar_faults = _faults(scalar_devices)
    one_by_one = {d.id: run_device(d, scalar_faults.get(d.id, []), START_MS, 3 * 24, 1200,
                                   changes=changes.get(d.id)) for d in scalar_devices}
    bank_devices = _pumps()
    bank_faults = _faults(bank_devices)
    together = run_devices(bank_devices, bank_faults, START_MS, 3 * 24, 1200, changes=changes)
    for device in scalar_devices:
        for table in ("avg", "min", "max"):
            left, right = getattr(one_by_one[device.id], table), getattr(together[device.id], table)
            assert set(left) == set(right)
            for metric, column in left.items():
                np.testing.assert_allclose(right[metric], column, rtol=1e-9, atol=1e-9, err_msg=f"{device.id} {metric}")
    thresholds = [(f.plan.fault, f.threshold_ms) for faults in scalar_faults.values() for f in faults]
    assert thresholds == [(f.plan.fault, f.threshold_ms) for faults in bank_faults.values() for f in faults]
    assert any(ms is not None for _, ms in thresholds)  # the wear and the leak crossed their hard limits
    assert np.nanmax(together[bank_devices[2].id].max["fault_code"]) > 0  # the dry run tripped the drive
