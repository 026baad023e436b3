"""A small pump-like profile for the edge tests (register layout chosen to exercise the planner)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from device_profiles import Profile, parse_profile

TEST_PUMP_DATA: dict[str, Any] = {
    "id": "test-pump",
    "kind": "pump",
    "transport": "modbus",
    "description": "test pump: holding registers, a float, a writable setpoint and a reset coil",
    "modbus": {"max_registers_per_read": 125},
    "poll_groups": {"fast": 0.2},
    "points": [
        {"name": "status", "table": "holding_register", "address": 0, "dtype": "uint16", "poll_group": "fast"},
        {"name": "frequency_hz", "table": "holding_register", "address": 1, "dtype": "uint16", "scale": 0.01,
         "poll_group": "fast"},
        {"name": "outlet_pressure_bar", "table": "holding_register", "address": 2, "dtype": "float32",
         "poll_group": "fast"},
        {"name": "pressure_setpoint", "table": "holding_register", "address": 10, "dtype": "uint16",
         "scale": 0.01, "writable": True, "min": 0, "max": 10, "poll_group": "fast"},
        {"name": "model", "table": "input_register", "address": 0, "dtype": "uint16", "poll_group": "fast"},
        {"name": "fault_reset", "table": "coil", "address": 0, "dtype": "bool", "writable": True,
         "poll_group": "fast"},
    ],
}
TEST_PUMP: Profile = parse_profile(TEST_PUMP_DATA, "tests/support/edge/profiles.py")

PUMP_VALUES = {"status": 1, "frequency_hz": 45.5, "outlet_pressure_bar": 3.25, "pressure_setpoint": 3.5,
               "model": 7}


def write_profile(directory: Path, period_s: float = 0.2) -> Path:
    """The test profile as a YAML file (the agent loads profiles by id or path)."""
    data = {**TEST_PUMP_DATA, "poll_groups": {"fast": period_s}}
    path = directory / "test-pump.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path
