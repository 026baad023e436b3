"""What a detector emits: one finding on one device, raised causally.

It lives on its own (it used to sit in the evaluation harness, now ``bench/analytics_scoring.py``)
because the product emits it — the detectors raise it and :mod:`cloud.analytics.jobs` turns it
into fleet alarms — while the event-level scoring against ground truth is not part of the product.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Detection:
    """A detector's finding on one device: raised at ``detected_ms`` (causal), onset estimate ``start_ms``."""

    device: str
    detector: str
    fault: str
    start_ms: int
    detected_ms: int
    score: float = 0.0
    message: str = ""
    evidence: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)
