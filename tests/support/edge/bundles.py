"""Edge configuration bundles for the rollout tests: the demo's builders
(:mod:`guanjia.app.demo_rollout`) on a pymodbus server of the test, on 127.0.0.1."""

from __future__ import annotations

from guanjia.app.demo_rollout import PROFILE_FILE, broken_profile, pressure_rule
from guanjia.app.demo_rollout import pump_bundle as _pump_bundle

__all__ = ["PROFILE_FILE", "broken_profile", "pressure_rule", "pump_bundle"]


def pump_bundle(port: int, devices: list[tuple[str, int]], *, period_s: float | None = None) -> dict[str, str]:
    return _pump_bundle("127.0.0.1", port, devices, period_s=period_s)
