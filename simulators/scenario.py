"""Scenario files: faults to inject at given simulated times after the start.

::

    faults:
      - {device: b1-lift-1, fault: passengers_trapped, at: 10m, duration: 20m}
      - {device: "b*-pump-1", fault: bearing_wear, at: 0, params: {percent_per_day: 5}}
      - {device: b2-meter-1, fault: modbus_exception, at: 1h, duration: 5m, params: {code: 4}}

``at`` and ``duration`` are simulated time: a number of seconds or ``30s``/``10m``/``2h``/``3d``.
``device`` may be a shell-style pattern (``b*-lift-*``). Omit ``duration`` for faults that last until
the simulator stops or the fault is cleared through the control endpoint.
"""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from device_profiles import ProfileError, find_profile
from guanjia.core.config import LineMap, line_for, parse_model, read_yaml
from guanjia.core.errors import ConfigError, ConfigIssue
from simulators.faults import faults_for
from simulators.fleet import FleetSpec

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(value: float | int | str) -> float:
    """``90`` / ``"90s"`` / ``"10m"`` / ``"2h"`` / ``"1.5d"`` → seconds."""
    if isinstance(value, int | float):
        seconds = float(value)
    else:
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", value)
        if match is None:
            raise ValueError(f"{value!r} is not a duration (use e.g. 30, 30s, 10m, 2h, 1d)")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds < 0:
        raise ValueError("must not be negative")
    return seconds


class ScenarioFault(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    device: str
    fault: str
    at: float = 0.0
    duration: float | None = None
    params: dict[str, float | int | str | bool] = Field(default_factory=dict)

    @field_validator("at", "duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> object:
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, int | float | str):
            return parse_duration(value)
        return value


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    faults: list[ScenarioFault] = Field(default_factory=list)


def check_scenario(scenario: Scenario, fleet: FleetSpec, source: str = "<scenario>",
                   lines: LineMap | None = None) -> None:
    """Every fault must match a device of the fleet and be a fault that device can have."""
    lines = lines or {}
    kinds: dict[str, tuple[str, str]] = {}
    for spec in fleet.devices:
        try:
            profile = find_profile(spec.profile)
        except (ProfileError, ConfigError):
            continue   # reported by the fleet check
        kinds[spec.id] = (profile.kind, profile.transport)
    issues: list[ConfigIssue] = []
    for index, item in enumerate(scenario.faults):
        matched = [d for d in kinds if fnmatch.fnmatchcase(d, item.device)]
        if not matched:
            issues.append(ConfigIssue(source, line_for(("faults", index, "device"), lines), f"faults.{index}.device",
                                      f"no device of the fleet matches {item.device!r}"))
            continue
        for device in matched:
            allowed = faults_for(*kinds[device])
            if item.fault not in allowed:
                issues.append(ConfigIssue(source, line_for(("faults", index, "fault"), lines), f"faults.{index}.fault",
                                          f"{device} ({kinds[device][0]}) cannot have {item.fault!r}; "
                                          f"possible: {', '.join(sorted(allowed))}"))
                break
    if issues:
        raise ConfigError(issues)


def load_scenario(path: str | Path, fleet: FleetSpec | None = None) -> Scenario:
    """Read a scenario file; with ``fleet``, also check its devices and faults (file:line: field)."""
    data, lines, source = read_yaml(path)
    scenario = parse_model(Scenario, data if data is not None else {}, source, lines)
    if fleet is not None:
        check_scenario(scenario, fleet, source, lines)
    return scenario
