"""The device model interface shared by every simulated device kind.

A model owns the *physical* state of one device and advances it with :meth:`DeviceModel.step`
(simulated seconds, possibly large when the clock is accelerated: models must stay stable and cheap
for any ``dt``). It exposes engineering values by point name; the Modbus and MQTT front ends encode
those with the profile, so the model never deals with registers.

Faults are switched on and off by name; a model only accepts the faults of its kind
(:data:`FAULTS_BY_KIND`). Communication faults (offline, exception responses, garbage frames) are
not the model's business: the front ends apply them.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import Any, Final

import numpy as np

from device_profiles import Profile
from device_profiles.codec import Value

COMM_FAULTS: Final = frozenset({"offline", "modbus_exception", "garbage_frames", "stream_drop"})
FAULTS_BY_KIND: Final[dict[str, frozenset[str]]] = {
    "meter": frozenset({"energy_drift", "phase_loss"}),
    "pump": frozenset({"dry_run", "bearing_wear", "pressure_loss"}),
    "elevator": frozenset({"passengers_trapped", "door_lock_fault", "out_of_leveling", "overspeed",
                           "door_open_while_moving", "clock_skew", "nuisance_code"}),
    "gate": frozenset({"forced_open", "held_open", "tamper", "duress", "clock_skew"}),
    "call_button": frozenset({"pressed", "low_battery"}),
}
DAY: Final = 86400.0


def hour_of_day(t: float, utc_offset_h: float = 8.0) -> float:
    """Local hour (0–24) of epoch seconds ``t``; communities run on China time by default."""
    return ((t / 3600.0) + utc_offset_h) % 24.0


def bump(hour: float, centre: float, width: float) -> float:
    """A smooth daily peak (Gaussian on the 24-hour circle)."""
    # the same value as min(d, 24 - d) (24 - d is exact for d in [12, 24]) without the min() call:
    # the elevators ask this a few million times per simulated month
    d = abs(hour - centre)
    if d > 12.0:
        d = 24.0 - d
    return math.exp(-0.5 * (d / width) ** 2)


def is_weekend(t: float, utc_offset_h: float = 8.0) -> bool:
    # 1970-01-01 was a Thursday
    return int((t + utc_offset_h * 3600) // DAY + 3) % 7 >= 5


class DeviceModel(ABC):
    """One simulated device: physical state, stepped in simulated time."""

    kind: str = ""

    def __init__(self, device_id: str, profile: Profile, rng: np.random.Generator, t0: float,
                 params: Mapping[str, Any] | None = None) -> None:
        self.device_id = device_id
        self.profile = profile
        self.rng = rng
        self.t = t0
        self.params: dict[str, Any] = dict(params or {})
        self.faults: dict[str, dict[str, Any]] = {}
        self.version = 0
        """Incremented whenever values may have changed (the front ends re-encode lazily)."""
        self.clock_skew_s = 0.0
        self.device_time: Callable[[], float] = self._model_time
        """What the device's own clock reads (epoch s); the fleet points it at its SimClock."""

    def _model_time(self) -> float:
        return self.t

    # ------------------------------------------------------------------ faults
    def supports(self, fault: str) -> bool:
        return fault in FAULTS_BY_KIND.get(self.kind, frozenset())

    def set_fault(self, fault: str, active: bool, params: Mapping[str, Any] | None = None) -> None:
        """Switch a fault on or off. Switching on an active fault only updates its parameters
        (a ramp keeps its start: bearing wear does not heal because its rate was re-stated)."""
        was_active = fault in self.faults
        if active:
            self.faults[fault] = dict(params or {})
            if fault == "clock_skew":
                self.clock_skew_s = float(self.faults[fault].get("seconds", 300.0))
        else:
            self.faults.pop(fault, None)
            if fault == "clock_skew":
                self.clock_skew_s = 0.0
        if was_active != active:
            self.on_fault(fault, active)
        self.version += 1

    def on_fault(self, fault: str, active: bool) -> None:
        """Hook for models whose state must change at the edge of a fault."""
        return

    # ------------------------------------------------------------------ time
    def advance_to(self, t: float) -> None:
        dt = t - self.t
        if dt <= 0:
            return
        self.step(dt)
        self.t = t
        self.version += 1

    @abstractmethod
    def step(self, dt: float) -> None:
        """Advance the physics by ``dt`` simulated seconds (``self.t`` is the start of the step)."""

    @abstractmethod
    def values(self) -> dict[str, Value]:
        """Engineering values by point name (every point the profile defines)."""

    def write(self, point: str, value: Value) -> None:
        """Apply a write from a master (already range-checked); raise ValueError to refuse it."""
        raise ValueError(f"{point} is not writable on this device")
