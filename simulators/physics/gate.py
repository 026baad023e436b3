"""Access gate physics: residents passing in and out, with the day's commuting peaks.

Passages are Poisson counts per step (exact for any step length): people leave in the morning peak
and come home in the evening peak, with a lighter midday and a quiet night. The leaf is open for a
couple of seconds per passage. Faults: ``forced_open`` (opened without a valid verification — ZKTeco
event 102), ``held_open`` (open longer than the door-open timeout — event 28), ``tamper`` (event
100), ``duress`` (a duress code or finger, event 101) and ``clock_skew`` of the gate's own clock
(the ``ts`` it stamps its messages with).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from device_profiles import Profile
from device_profiles.codec import Value
from simulators.physics.base import DeviceModel, bump, hour_of_day, is_weekend

OPEN_PER_PASSAGE_S = 2.0
EVENTS = {"forced_open": 102, "held_open": 28, "tamper": 100, "duress": 101}


def passage_rates(t: float, peak: float) -> tuple[float, float]:
    """(in, out) passages per hour."""
    h = hour_of_day(t)
    scale = 0.7 if is_weekend(t) else 1.0
    rate_out = peak * scale * (0.03 + 1.0 * bump(h, 7.6, 0.9) + 0.25 * bump(h, 13.0, 2.0) + 0.2 * bump(h, 19.0, 1.5))
    rate_in = peak * scale * (0.03 + 0.15 * bump(h, 8.0, 1.0) + 0.3 * bump(h, 12.0, 1.5) + 1.0 * bump(h, 18.6, 1.3))
    return rate_in, rate_out


REMOTE_OPEN_S = 5.0
"""How long a gate opened by command stays open (a speed gate's pass window)."""


class GateModel(DeviceModel):
    kind = "gate"

    def __init__(self, device_id: str, profile: Profile, rng: np.random.Generator, t0: float,
                 params: Mapping[str, Any] | None = None) -> None:
        super().__init__(device_id, profile, rng, t0, params)
        self.peak = float(self.params.get("peak_per_hour", 120.0))
        self.passages_in = int(self.params.get("passages_in", 10_000 + 50_000 * rng.random()))
        self.passages_out = self.passages_in + int(rng.integers(0, 50))
        self.open_until = 0.0
        self.last_event = 200
        self.heartbeat = 0

    def step(self, dt: float) -> None:
        rate_in, rate_out = passage_rates(self.t + dt / 2, self.peak)
        n_in = int(self.rng.poisson(rate_in * dt / 3600.0))
        n_out = int(self.rng.poisson(rate_out * dt / 3600.0))
        alarm = next((EVENTS[f] for f in EVENTS if f in self.faults), None)
        if n_in or n_out:
            self.passages_in += n_in
            self.passages_out += n_out
            self.last_event = 0
            self.open_until = self.t + dt + OPEN_PER_PASSAGE_S
        if self.open_until < self.t + dt and self.last_event == 0:
            self.last_event = 200
        if alarm is not None:
            self.last_event = alarm   # an active alarm stays the gate's latest event until it clears

    def remote_open(self, seconds: float = REMOTE_OPEN_S) -> bool:
        """Open on a remote command (event 8, ``remote_open``) for ``seconds``; refused (False)
        while the gate is tampered with or under duress — a real controller locks down then."""
        if "tamper" in self.faults or "duress" in self.faults:
            return False
        self.open_until = max(self.open_until, self.t + seconds)
        self.last_event = 8
        return True

    def on_fault(self, fault: str, active: bool) -> None:
        if active and fault in EVENTS:
            self.last_event = EVENTS[fault]

    def values(self) -> dict[str, Value]:
        forced = "forced_open" in self.faults
        held = "held_open" in self.faults
        door_open = forced or held or self.t < self.open_until
        return {
            "door_state": 1 if door_open else 0,
            "lock_state": 1 if door_open and not forced else 0,
            "mode": 0,
            "passages_in": self.passages_in & 0xFFFFFFFF,
            "passages_out": self.passages_out & 0xFFFFFFFF,
            "forced_open": forced,
            "held_open": held,
            "tamper": "tamper" in self.faults,
            "duress": "duress" in self.faults,
            "last_event": self.last_event,
            "heartbeat": self.heartbeat,
        }

    def timestamp_ms(self) -> int:
        return int((self.device_time() + self.clock_skew_s) * 1000)
