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

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from guanjia.config import load_model

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


def load_scenario(path: str | Path) -> Scenario:
    return load_model(Scenario, path)
