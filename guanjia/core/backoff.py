"""Capped, jittered exponential backoff ("full jitter", as in the AWS architecture blog).

Written here rather than taken from a library because it is ten lines and every reconnect loop
in both tiers needs the same behaviour and the same seam for tests (an injectable ``random``).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(slots=True)
class Backoff:
    initial: float = 0.5
    cap: float = 30.0
    factor: float = 2.0
    rng: random.Random = field(default_factory=random.Random)
    attempt: int = 0

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.cap < self.initial or self.factor < 1:
            raise ValueError("backoff needs 0 < initial <= cap and factor >= 1")

    def next_delay(self) -> float:
        """Delay before the next attempt: uniform in [0, min(cap, initial·factor^attempt)]."""
        ceiling = min(self.cap, self.initial * self.factor**self.attempt)
        self.attempt += 1
        return self.rng.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.attempt = 0
