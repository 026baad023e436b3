"""One-key call button (一键呼叫) of an elderly resident: presses, battery, heartbeat.

A press is the fault ``pressed`` (inject it for a few seconds: ``pressed`` is true while it lasts,
and every start counts one more press), so the scenario files and the control endpoint drive a
resident's call like any other incident; ``low_battery`` drops the battery to a level that needs a
change. Otherwise the battery drains slowly (a coin cell lasts about two years).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from device_profiles import Profile
from device_profiles.codec import Value
from simulators.physics.base import DeviceModel

DRAIN_PER_DAY = 100.0 / 730.0
"""Percent of battery a day: empty in about two years."""
LOW_BATTERY = 8.0


class CallButtonModel(DeviceModel):
    kind = "call_button"

    def __init__(self, device_id: str, profile: Profile, rng: np.random.Generator, t0: float,
                 params: Mapping[str, Any] | None = None) -> None:
        super().__init__(device_id, profile, rng, t0, params)
        self.presses = int(self.params.get("presses", 0))
        self.battery = float(self.params.get("battery", 60.0 + 40.0 * rng.random()))
        self.heartbeat = 0

    def step(self, dt: float) -> None:
        self.battery = max(0.0, self.battery - DRAIN_PER_DAY * dt / 86400.0)

    def on_fault(self, fault: str, active: bool) -> None:
        if fault == "pressed" and active:
            self.presses += 1

    def values(self) -> dict[str, Value]:
        battery = min(self.battery, LOW_BATTERY) if "low_battery" in self.faults else self.battery
        return {"pressed": "pressed" in self.faults, "presses": self.presses & 0xFFFFFFFF,
                "battery": round(battery), "heartbeat": self.heartbeat}
