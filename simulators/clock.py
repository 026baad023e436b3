"""Simulated time: ``sim = start + speed × (wall elapsed)``.

The time-acceleration factor lets a week of device behaviour (daily load curves, bearing wear over
days) pass in minutes. Device clocks that are *reported* (the elevator box clock, a gate's message
timestamp) follow :meth:`SimClock.device_now`, which is wall time by default so that an edge agent
does not see every device as clock-skewed when the physics run faster than real time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

DeviceClock = Literal["wall", "sim"]


@dataclass(slots=True)
class SimClock:
    speed: float = 1.0
    start: float = field(default_factory=time.time)
    """Simulated epoch seconds at the moment the clock was created."""
    device_clock: DeviceClock = "wall"
    _wall0: float = field(default_factory=time.monotonic)

    def __post_init__(self) -> None:
        if self.speed <= 0:
            raise ValueError("speed must be > 0")

    def restart(self) -> None:
        """Make ``now()`` equal ``start`` again (called when the fleet starts serving)."""
        self._wall0 = time.monotonic()

    def now(self) -> float:
        """Simulated epoch seconds."""
        return self.start + self.speed * (time.monotonic() - self._wall0)

    def elapsed(self) -> float:
        """Simulated seconds since start."""
        return self.speed * (time.monotonic() - self._wall0)

    def wall_delay(self, sim_seconds: float) -> float:
        """Wall seconds until ``sim_seconds`` of simulated time have passed."""
        return sim_seconds / self.speed

    def device_now(self) -> float:
        """What an accurate device clock would read (epoch seconds)."""
        return self.now() if self.device_clock == "sim" else time.time()
