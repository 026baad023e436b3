"""Detectors by device kind; :data:`DETECTORS` is the registry the jobs and the evaluation use."""

from __future__ import annotations

from cloud.analytics.detectors.base import Channel, Detector, Params, Scored, episodes
from cloud.analytics.detectors.elevator import ElevatorDetector
from cloud.analytics.detectors.gate import GateDetector
from cloud.analytics.detectors.meter import MeterDetector
from cloud.analytics.detectors.pump import PumpDetector

DETECTORS: dict[str, Detector] = {
    "pump": PumpDetector(),
    "meter": MeterDetector(),
    "elevator": ElevatorDetector(),
    "gate": GateDetector(),
}
"""Device kind → its detector (one per kind; a detector may watch several fault kinds)."""

__all__ = ["DETECTORS", "Channel", "Detector", "Params", "Scored", "episodes"]
