"""Device physics by kind; :func:`model_for` picks the model of a profile's kind."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from device_profiles import Profile
from simulators.physics.base import COMM_FAULTS, FAULTS_BY_KIND, DeviceModel
from simulators.physics.call_button import CallButtonModel
from simulators.physics.elevator import ElevatorModel
from simulators.physics.gate import GateModel
from simulators.physics.meter import MeterModel
from simulators.physics.pump import PumpModel

MODELS: dict[str, type[DeviceModel]] = {
    "meter": MeterModel, "pump": PumpModel, "elevator": ElevatorModel, "gate": GateModel,
    "call_button": CallButtonModel,
}

__all__ = ["COMM_FAULTS", "FAULTS_BY_KIND", "MODELS", "DeviceModel", "model_for"]


def model_for(device_id: str, profile: Profile, rng: np.random.Generator, t0: float,
              params: Mapping[str, Any] | None = None) -> DeviceModel:
    return MODELS[profile.kind](device_id, profile, rng, t0, params)
