"""Report by exception: which polled values are worth sending upstream.

Users of gateway products expect per-point options (ThingsBoard's report strategies, EdgeX's
``onChange``): ``deadband`` (send when the value moved at least this much since the last *sent*
value), ``on_change`` (send when it differs at all) and ``max_interval_s`` (send at least this often
anyway, so the cloud can tell "unchanged" from "gone"). A point with none of them is sent every
poll. A change of quality is always sent. Rules see every polled value regardless: this filter is
for the uplink only.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles import Point
from guanjia.core.wire import Quality, Scalar


@dataclass(slots=True)
class _Last:
    value: Scalar
    quality: Quality
    ts_ms: int


@dataclass(frozen=True, slots=True)
class _Policy:
    deadband: float | None
    on_change: bool
    max_interval_ms: int | None

    @property
    def always(self) -> bool:
        return self.deadband is None and not self.on_change


class ReportFilter:
    """Per-device state of the last sent value of each point."""

    __slots__ = ("_last", "_policies", "passthrough")

    def __init__(self, points: list[Point], enabled: bool = True) -> None:
        self._policies: dict[str, _Policy] = {}
        self._last: dict[str, _Last] = {}
        self.passthrough = not enabled or not any(
            p.deadband is not None or p.on_change or p.max_interval_s is not None for p in points)
        """Every value is sent: the caller may skip the filter altogether (the hot path)."""
        if self.passthrough:
            return  # no per-point state at all (memory: 1000s of devices)
        for p in points:
            interval = None if p.max_interval_s is None else int(p.max_interval_s * 1000)
            self._policies[p.name] = _Policy(p.deadband, p.on_change, interval)

    def should_send(self, name: str, value: Scalar, quality: Quality, ts_ms: int) -> bool:
        """Decide for one value, and remember it as sent when the answer is yes."""
        policy = self._policies.get(name)
        if policy is None or policy.always:
            return True
        last = self._last.get(name)
        send = (
            last is None
            or last.quality != quality
            or (policy.max_interval_ms is not None and ts_ms - last.ts_ms >= policy.max_interval_ms)
            or _changed(policy, last.value, value)
        )
        if send:
            self._last[name] = _Last(value, quality, ts_ms)
        return send


def _changed(policy: _Policy, old: Scalar, new: Scalar) -> bool:
    if policy.deadband is not None and isinstance(old, int | float) and isinstance(new, int | float) \
            and not isinstance(old, bool) and not isinstance(new, bool):
        return abs(new - old) >= policy.deadband if policy.deadband > 0 else new != old
    return old != new
