"""The labelled evaluation fleet, driven through the simulators' own physics and fault models.

Why not the Modbus servers: 30+ simulated days of 200+ devices through TCP would take hours; the
detectors only read hourly aggregates anyway. So this module instantiates the very device models
the demo serves (:mod:`simulators.physics`), advances each one in steps of ``step_s`` simulated
seconds with :meth:`DeviceModel.advance_to`, samples :meth:`DeviceModel.values` after every step
and folds the samples into hourly avg/min/max (:class:`HourlyAggregates`) — the same shape as
``telemetry_1h``. Faults are switched with :meth:`DeviceModel.set_fault` at planned times; the plan
*is* the ground truth (:class:`FaultLabel`; written out as labels in the simulators' label format
by :func:`labels_jsonl`).

Gradual faults are scheduled as the fault model allows: bearing wear with its ``percent_per_day``,
energy drift with its ``ramp_hours`` up to +20 %, and a *slow* pressure loss as a leak whose
``leak_m3h`` grows hour by hour (the pump model re-reads the fault parameters every step). For
each gradual fault its hard-threshold rules — the shipped ``pump-pressure-loss`` and
``pump-motor-overtemp`` of ``rules/library`` plus the motor-overload limit of
``reference_rules.yaml`` — are run over the same samples with the rules engine, and the first
time one raises after the fault began, and a fault-free twin of the device does not
(:class:`HealthyTwin`), is the label's ``threshold_ms``: the lead-time reference.
(The shipped ``pump-bearing-wear`` rule is itself a learned-baseline early warning, not a hard
threshold, so it is not the reference.) Energy drift is the exception:
the shipped ``meter-energy-drift`` rule compares single hours and fires on ordinary hourly noise
within hours of being armed (before the drift is even 2 %), so its reference is the moment the
drift itself crosses the 15 % cost-control band (known exactly from the fault model's ramp).

This lives in the simulators tier (it used to be ``cloud/analytics/simfleet.py``, reaching the
physics through ``import_module`` strings because the cloud must not import the simulators): the
physics classes are imported for real here, and the consumers that may see both sides — the
evaluation harness in ``bench/`` and the demo replay in ``guanjia/app/`` — turn the aggregates
into the cloud's ``HourlyFrame``. Nothing here imports the cloud.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from simulators.physics.base import DeviceModel
from simulators.physics.elevator import ElevatorModel
from simulators.physics.gate import GateModel
from simulators.physics.meter import MeterModel
from simulators.physics.pump import PumpModel
from simulators.physics.pump_bank import advance_pumps_to

log = logging.getLogger(__name__)

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
COST_CONTROL_BAND = 0.15
"""Property cost control: an energy indicator > 15 % away from its normal range is a warning.

The same figure as the cloud meter detector's ``COST_RULE_BAND`` (the simulators cannot import
the cloud; ``tests/simulators/test_labelled_fleet.py`` checks the two agree)."""

MODEL_CLASSES: dict[str, type[DeviceModel]] = {
    "meter": MeterModel,
    "pump": PumpModel,
    "elevator": ElevatorModel,
    "gate": GateModel,
}
PROFILES: dict[str, tuple[str, ...]] = {
    "meter": ("eastron-sdm630", "eastron-sdm120"),
    "pump": ("vfd-pump",),
    "elevator": ("elevator-gbt24476",),
    "gate": ("access-gate",),
}
SAMPLED: dict[str, tuple[str, ...]] = {
    "meter": ("energy_import", "power_total", "power", "voltage_l1", "voltage_l2", "voltage_l3", "voltage"),
    "pump": ("running", "current", "frequency", "outlet_pressure", "suction_pressure", "flow", "fault_code",
             "start_count", "run_hours", "pressure_setpoint", "power", "motor_temperature"),
    "elevator": ("run_count", "door_cycles", "run_hours", "fault_code", "car_moving", "in_door_zone",
                 "load_percent", "service_mode"),
    "gate": ("passages_in", "passages_out", "forced_open", "held_open", "tamper"),
}
"""Metrics kept per kind (what the detectors and the health record read)."""

REFERENCE_RULES = Path(__file__).with_name("reference_rules.yaml")
MIX: dict[str, float] = {"meter": 0.35, "pump": 0.15, "elevator": 0.3, "gate": 0.2}


@dataclass(frozen=True, slots=True)
class FaultLabel:
    """One injected fault: ground truth from the simulator's fault model / label file."""

    device: str
    fault: str
    start_ms: int
    end_ms: int
    gradual: bool = False
    threshold_ms: int | None = None
    """When the hard-threshold rule for this fault would first fire (gradual faults), if ever."""


@dataclass(slots=True)
class HourlyAggregates:
    """``avg``/``min``/``max`` of each sampled metric per hour for one device (NaN where no sample).

    The columns of the cloud analytics' ``HourlyFrame`` (dense hours from ``start_ms``), which the
    evaluation harness and the demo replay build from these fields.
    """

    device: str
    kind: str
    start_ms: int
    hours: int
    avg: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    min: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    max: dict[str, npt.NDArray[np.float64]] = field(default_factory=dict)
    community: str = "sim"


@dataclass(frozen=True, slots=True)
class FaultPlan:
    """How a fault kind is injected: gradual or not, duration, parameters, its hard-threshold rule."""

    kind: str
    fault: str
    gradual: bool
    hours: tuple[float, float]
    params: Callable[[np.random.Generator], dict[str, Any]]
    threshold_rules: tuple[str, ...] = ()
    """Hard-threshold rules (shipped or :data:`REFERENCE_RULES`); the first to fire is the reference."""
    ramp: Callable[[dict[str, Any], float], dict[str, Any]] | None = None
    """For faults whose intensity grows: parameters after ``hours`` since onset."""
    min_remaining_days: float = 4.0
    """A gradual fault starts at least this long before the run ends (so its threshold can fire)."""
    threshold_after_h: Callable[[dict[str, Any]], float] | None = None
    """Where no shipped rule is a sound reference: hours after onset the fault crosses the hard limit."""


def _leak_ramp(params: dict[str, Any], hours: float) -> dict[str, Any]:
    share = min(1.0, hours / float(params["ramp_hours"]))
    return {**params, "leak_m3h": float(params["leak_max_m3h"]) * share}


FAULTS: tuple[FaultPlan, ...] = (
    FaultPlan("pump", "bearing_wear", True, (24 * 12, 24 * 20),
              lambda r: {"percent_per_day": float(r.uniform(6.0, 10.0))},
              ("ref-pump-motor-overload", "pump-motor-overtemp"), min_remaining_days=14),
    FaultPlan("pump", "pressure_loss", True, (24 * 8, 24 * 12),
              lambda r: {"leak_max_m3h": float(r.uniform(20.0, 30.0)), "ramp_hours": float(r.uniform(72, 144))},
              ("pump-pressure-loss",), _leak_ramp, min_remaining_days=7),
    FaultPlan("pump", "dry_run", False, (1.0, 4.0), lambda r: {}),
    FaultPlan("meter", "energy_drift", True, (24 * 10, 24 * 14),
              lambda r: {"percent": 20.0, "ramp_hours": float(r.uniform(72, 168))},
              min_remaining_days=8,
              threshold_after_h=lambda p: float(p["ramp_hours"]) * COST_CONTROL_BAND * 100 / float(p["percent"])),
    FaultPlan("meter", "phase_loss", False, (1.0, 6.0), lambda r: {"phase": int(r.integers(1, 4))}),
    FaultPlan("elevator", "passengers_trapped", False, (0.5, 2.0), lambda r: {}),
    FaultPlan("elevator", "door_lock_fault", False, (1.0, 4.0), lambda r: {}),
    FaultPlan("elevator", "out_of_leveling", False, (0.5, 2.0), lambda r: {}),
    FaultPlan("gate", "forced_open", False, (0.2, 1.0), lambda r: {}),
    FaultPlan("gate", "held_open", False, (0.5, 2.0), lambda r: {}),
)


@dataclass(slots=True)
class FleetDevice:
    id: str
    kind: str
    profile: str
    model: DeviceModel


@dataclass(slots=True)
class PlannedFault:
    device: str
    plan: FaultPlan
    start_ms: int
    end_ms: int
    params: dict[str, Any]
    threshold_ms: int | None = None


@dataclass(frozen=True, slots=True)
class OperatingChange:
    """Ordinary operation, not a fault: an operator's setpoint change or a change of water demand
    (new tenants, summer) at ``at_ms``. The evaluation's variants use these so that a detector that
    mistakes operation for a fault is counted as a false alarm (issue 15)."""

    at_ms: int
    setpoint: float | None = None
    """New pressure setpoint (bar), written the way a BMS or the operator panel would."""
    demand_factor: float | None = None
    """Multiplies the device's demand from then on: a pump set's peak water demand, a lift's
    hall calls, a gate's passages, a meter's base load (whichever the model has)."""
    standby: bool | None = None
    """A pump of a duty/standby pair hands over: True — the other pump serves the pair's demand
    from now on (this one's demand is 0 and it sleeps, as a standby pump does); False — back on
    duty with its demand (what a demand change meanwhile made of it)."""

    def apply(self, model: DeviceModel) -> None:
        if self.setpoint is not None:
            model.write("pressure_setpoint", self.setpoint)
        if self.demand_factor is not None:
            for attr in (*DEMAND_ATTRIBUTES, STANDBY_ATTRIBUTE):
                if hasattr(model, attr):
                    setattr(model, attr, float(getattr(model, attr)) * self.demand_factor)
        if not isinstance(model, PumpModel):
            return
        if self.standby and not hasattr(model, STANDBY_ATTRIBUTE):
            setattr(model, STANDBY_ATTRIBUTE, model.demand_max)
            model.demand_max = 0.0
        elif self.standby is False and hasattr(model, STANDBY_ATTRIBUTE):
            model.demand_max = float(getattr(model, STANDBY_ATTRIBUTE))
            delattr(model, STANDBY_ATTRIBUTE)


DEMAND_ATTRIBUTES = ("demand_max", "peak_calls", "peak", "base_kw")
"""The model attribute that scales each kind's demand (pump, elevator, gate, meter)."""
STANDBY_ATTRIBUTE = "duty_demand_max"
"""Where a standby pump keeps its demand until it is back on duty (a demand change scales it too)."""


@dataclass(slots=True)
class SimRun:
    """The fleet's hourly aggregates and the ground truth of one simulated run."""

    seed: int
    start_ms: int
    days: int
    warmup_days: int
    hourly: dict[str, HourlyAggregates]
    faults: list[PlannedFault]

    @property
    def labels(self) -> list[FaultLabel]:
        return [FaultLabel(f.device, f.plan.fault, f.start_ms, f.end_ms, f.plan.gradual, f.threshold_ms)
                for f in self.faults]


def build_fleet(devices: int, seed: int, start_ms: int) -> list[FleetDevice]:
    """A generated community: ``b{n}-{kind}-{i}`` devices in :data:`MIX` proportions."""
    from device_profiles import find_profile

    classes = MODEL_CLASSES
    rng = np.random.default_rng(seed)
    share = {k: MIX[k] for k in classes}
    total = sum(share.values())
    counts = {k: max(1, round(devices * v / total)) for k, v in share.items()}
    fleet: list[FleetDevice] = []
    for kind, count in counts.items():
        for i in range(count):
            profiles = PROFILES[kind]
            profile_id = profiles[int(rng.integers(len(profiles)))] if kind == "meter" else profiles[0]
            device_id = f"b{i // 3 + 1}-{kind}-{i % 3 + 1}"
            model = classes[kind](device_id, find_profile(profile_id),
                                  np.random.default_rng([seed, len(fleet)]), start_ms / 1000.0)
            fleet.append(FleetDevice(device_id, kind, profile_id, model))
    return fleet


def plan_faults(fleet: list[FleetDevice], seed: int, start_ms: int, days: int, warmup_days: int,
                faulty_share: float = 0.5) -> list[PlannedFault]:
    """Faults on about ``faulty_share`` of the devices, every kind present, none in the warm-up.

    Gradual faults start early enough to develop; sudden ones anywhere after the warm-up, at most
    two per device, a day apart. The rest of the fleet stays fault-free for the whole run.
    """
    rng = np.random.default_rng([seed, 7])
    end_ms = start_ms + days * DAY_MS
    first_ms = start_ms + (warmup_days + 1) * DAY_MS
    by_kind: dict[str, list[FaultPlan]] = {}
    for plan in FAULTS:
        by_kind.setdefault(plan.kind, []).append(plan)
    planned: list[PlannedFault] = []
    for device in fleet:
        plans = by_kind.get(device.kind)
        if not plans or not getattr(device.model, "supports", lambda _f: True)(plans[0].fault):
            continue
        if rng.random() >= faulty_share:
            continue
        plan = plans[int(rng.integers(len(plans)))]
        if device.profile == "eastron-sdm120" and plan.fault == "phase_loss":
            plan = next(p for p in plans if p.fault == "energy_drift")
        repeats = 1 if plan.gradual else int(rng.integers(1, 3))
        cursor = first_ms
        for _ in range(repeats):
            length_ms = int(rng.uniform(*plan.hours) * HOUR_MS)
            latest = end_ms - int(plan.min_remaining_days * DAY_MS if plan.gradual else length_ms + DAY_MS)
            if plan.gradual:
                latest = min(latest, end_ms - length_ms // 2)
            if latest <= cursor:
                break
            begin = int(rng.uniform(cursor, latest)) // (10 * 60_000) * (10 * 60_000)
            finish = min(end_ms, begin + length_ms)
            params = plan.params(rng)
            fault = PlannedFault(device.id, plan, begin, finish, params)
            if plan.threshold_after_h is not None:
                at = begin + int(plan.threshold_after_h(params) * HOUR_MS)
                fault.threshold_ms = at if at <= finish else None
            planned.append(fault)
            cursor = finish + DAY_MS
    return planned


def _sample(values: dict[str, Any], metrics: tuple[str, ...]) -> list[float]:
    return [math.nan if value is None or isinstance(value, str) else float(value)
            for value in map(values.get, metrics)]


def simulate(
    devices: int = 220,
    days: int = 42,
    *,
    seed: int = 1,
    warmup_days: int = 14,
    step_s: int = 1200,
    start_ms: int = 1_767_225_600_000,  # 2026-01-01T00:00Z, a Thursday
    thresholds: bool = True,
) -> SimRun:
    """Run the fleet for ``days`` and return hourly aggregates + ground truth."""
    if (HOUR_MS // 1000) % step_s:
        raise ValueError("step_s must divide an hour")
    fleet = build_fleet(devices, seed, start_ms)
    faults = plan_faults(fleet, seed, start_ms, days, warmup_days)
    by_device: dict[str, list[PlannedFault]] = {}
    for fault in faults:
        by_device.setdefault(fault.device, []).append(fault)
    hourly = run_devices(fleet, by_device, start_ms, days * 24, step_s, thresholds=thresholds)
    return SimRun(seed, start_ms, days, warmup_days, hourly, faults)


def run_device(device: FleetDevice, faults: list[PlannedFault], start_ms: int, hours: int, step_s: int,
               *, thresholds: bool = True, changes: list[OperatingChange] | None = None,
               metrics: tuple[str, ...] | None = None) -> HourlyAggregates:
    """Advance one device through ``hours``, switching its faults and applying operating
    ``changes``; fold the samples into hours. ``metrics``: what to keep (default :data:`SAMPLED`
    of the kind; the demo's history keeps what its device profile stores)."""
    return run_devices([device], {device.id: faults}, start_ms, hours, step_s, thresholds=thresholds,
                       changes={device.id: changes or []},
                       metrics=None if metrics is None else {device.id: metrics})[device.id]


BANK_FROM = 16
"""Pump sets advanced together from this many on: a numpy substep costs ~150 µs whatever the
number of pumps, a scalar pump ~8 µs (measured on 30 pumps: 2.0 against 3.2 CPU s per 3 days)."""


def run_devices(devices: list[FleetDevice], faults: dict[str, list[PlannedFault]], start_ms: int, hours: int,
                step_s: int, *, thresholds: bool = True,
                changes: dict[str, list[OperatingChange]] | None = None,
                metrics: dict[str, tuple[str, ...]] | None = None) -> dict[str, HourlyAggregates]:
    """:func:`run_device` for many devices in lock-step: every step, each device's changes and
    faults are applied, then all are advanced — the pump sets together through
    :func:`advance_pumps_to` (the same arithmetic, vectorised: the pumps' 0.5 s controller
    substeps were most of a fleet's simulation time; from :data:`BANK_FROM` pumps on, below that the
    numpy overhead costs more than it saves), the others one by one — and sampled (``metrics`` per
    device, default :data:`SAMPLED` of its kind)."""
    kept = {d.id: (metrics or {}).get(d.id) or SAMPLED[d.kind] for d in devices}
    per_hour = (HOUR_MS // 1000) // step_s
    samples = {d.id: np.full((hours * per_hour, len(kept[d.id])), np.nan) for d in devices}
    engines = {d.id: _threshold_engine(faults.get(d.id, [])) if thresholds else None for d in devices}
    pending = {d.id: sorted((changes or {}).get(d.id, []), key=lambda c: c.at_ms) for d in devices}
    pumps = [d.model for d in devices if isinstance(d.model, PumpModel)]
    others = [d.model for d in devices if not isinstance(d.model, PumpModel)]
    # only the devices with something to switch are visited each step (most have neither changes
    # nor faults, and the loop runs devices × 2160 steps per 30-day fleet)
    eventful = [d for d in devices if pending[d.id] or faults.get(d.id)]
    twins: dict[str, HealthyTwin] = {}
    for index, now_ms in enumerate(_steps(start_ms, hours * per_hour, step_s)):
        for device in eventful:
            queue = pending[device.id]
            engine = engines[device.id]
            if engine is not None and device.id not in twins and any(
                    f.plan.gradual and now_ms - step_s * 1000 < f.start_ms <= now_ms for f in faults[device.id]):
                twins[device.id] = HealthyTwin.of(device, engine, faults[device.id])
            twin = twins.get(device.id)
            while queue and queue[0].at_ms <= now_ms:
                change = queue.pop(0)
                change.apply(device.model)
                if twin is not None:
                    change.apply(twin.device.model)
            _switch_faults(device, faults.get(device.id, []), now_ms, step_s)
            if twin is not None:
                _switch_faults(twin.device, twin.faults, now_ms, step_s)
        if len(pumps) >= BANK_FROM:
            advance_pumps_to(pumps, now_ms / 1000.0)
        else:
            for pump in pumps:
                pump.advance_to(now_ms / 1000.0)
        for other in others:
            other.advance_to(now_ms / 1000.0)
        for twin in twins.values():
            twin.device.model.advance_to(now_ms / 1000.0)
        for device in devices:
            values = device.model.values()
            samples[device.id][index] = _sample(values, kept[device.id])
            engine = engines[device.id]
            if engine is not None:
                feed_threshold(engine, device, faults.get(device.id, []), now_ms, values, twins.get(device.id))
    return {d.id: _fold(d, samples[d.id], kept[d.id], start_ms, hours, per_hour) for d in devices}


@dataclass(slots=True)
class HealthyTwin:
    """The device as it would have run without its gradual faults: the lead-time reference's control.

    Why (issue 15): a hard-threshold rule raised after a fault began is not always the fault's. On
    seed 102's summer fleet a pump restarting after an hour asleep drew 33.5 A for one 20-minute
    sample (flow surging into the emptied pipes) 50 minutes after a 7 %/day bearing wear began;
    the overload reference (14.0 A) raised, and the wear — which had moved the current by 0.3 % —
    was charged a 57-hour *negative* lead. A copy of the model taken as the first gradual fault
    switches on (same state, same random stream, the same operating changes and non-gradual faults
    from then on, its own copy of the rules engine) shows what the rules do without the fault; a
    raise the twin makes too, within a step, is the device's and not the fault's."""

    device: FleetDevice
    engine: Any
    faults: list[PlannedFault]
    """The device's non-gradual faults (nuisance codes, sudden faults): the twin has them too."""
    raised: dict[str, int] = field(default_factory=dict)
    """Rule → time (ms) of the twin's latest raise."""
    active: set[str] = field(default_factory=set)
    """Rules raised and not cleared in the twin."""
    candidates: list[tuple[PlannedFault, str, int]] = field(default_factory=list)
    """Raises of the real device that wait one step for the twin (it may raise a step later)."""

    @classmethod
    def of(cls, device: FleetDevice, engine: Any, faults: list[PlannedFault]) -> HealthyTwin:
        import copy

        return cls(FleetDevice(device.id, device.kind, device.profile, copy.deepcopy(device.model)),
                   copy.deepcopy(engine), [f for f in faults if not f.plan.gradual])

    def observe(self, now_ms: int) -> None:
        for event in self.engine.process(self.device.id, self.device.kind, now_ms, self.device.model.values(),
                                         profile=self.device.profile):
            if event.state == "raise":
                self.raised[event.rule] = now_ms
                self.active.add(event.rule)
            elif event.state == "clear":
                self.active.discard(event.rule)

    def explains(self, rule: str, at_ms: int, step_ms: int) -> bool:
        """The twin raised ``rule`` within a step of ``at_ms``, or holds it raised."""
        return rule in self.active or (rule in self.raised and abs(self.raised[rule] - at_ms) <= step_ms)


def _fold(device: FleetDevice, samples: npt.NDArray[np.float64], metrics: tuple[str, ...], start_ms: int,
          hours: int, per_hour: int) -> HourlyAggregates:
    cube = samples.reshape(hours, per_hour, len(metrics))
    with np.errstate(invalid="ignore"), _quiet():
        avg, low, high = np.nanmean(cube, axis=1), np.nanmin(cube, axis=1), np.nanmax(cube, axis=1)
    frame = HourlyAggregates(device=device.id, kind=device.kind, start_ms=start_ms, hours=hours, community="sim")
    for j, name in enumerate(metrics):
        if np.isnan(avg[:, j]).all():
            continue
        frame.avg[name], frame.min[name], frame.max[name] = avg[:, j], low[:, j], high[:, j]
    return frame


def single_device(kind: str, device_id: str, *, days: int, seed: int = 1, start_ms: int = 1_767_225_600_000,
                  fault: str | None = None, fault_start_day: float = 0.0, fault_params: dict[str, Any] | None = None,
                  fault_hours: float | None = None, step_s: int = 1200,
                  changes: list[OperatingChange] | None = None) -> tuple[HourlyAggregates, list[PlannedFault]]:
    """One device of ``kind`` (first profile of the kind) with at most one fault, for tests and demos."""
    from device_profiles import find_profile

    profile = PROFILES[kind][0]
    device = FleetDevice(device_id, kind, profile, MODEL_CLASSES[kind](device_id, find_profile(profile),
                                                                 np.random.default_rng(seed), start_ms / 1000.0))
    faults: list[PlannedFault] = []
    if fault is not None:
        plan = next(p for p in FAULTS if p.kind == kind and p.fault == fault)
        begin = start_ms + int(fault_start_day * DAY_MS)
        finish = start_ms + days * DAY_MS if fault_hours is None else begin + int(fault_hours * HOUR_MS)
        faults.append(PlannedFault(device_id, plan, begin, finish,
                                   dict(fault_params if fault_params is not None else plan.params(
                                       np.random.default_rng(seed)))))
    return run_device(device, faults, start_ms, days * 24, step_s, changes=changes), faults


def _steps(start_ms: int, count: int, step_s: int) -> Iterator[int]:
    for i in range(1, count + 1):
        yield start_ms + i * step_s * 1000


def _switch_faults(device: FleetDevice, faults: list[PlannedFault], now_ms: int, step_s: int) -> None:
    """Switch faults on/off at the step that crosses their start/end; grow ramped faults hourly."""
    for fault in faults:
        before = now_ms - step_s * 1000
        if before < fault.start_ms <= now_ms:
            device.model.set_fault(fault.plan.fault, True, _ramped(fault, now_ms))
        elif fault.start_ms < now_ms <= fault.end_ms and fault.plan.ramp is not None and now_ms % HOUR_MS == 0:
            device.model.set_fault(fault.plan.fault, True, _ramped(fault, now_ms))  # re-stating updates params
        if before < fault.end_ms <= now_ms:
            device.model.set_fault(fault.plan.fault, False)


def _ramped(fault: PlannedFault, now_ms: int) -> dict[str, Any]:
    if fault.plan.ramp is None:
        return dict(fault.params)
    return fault.plan.ramp(fault.params, (now_ms - fault.start_ms) / HOUR_MS)


class _quiet:
    """Silence numpy's all-NaN-slice RuntimeWarning (a device offline for an hour is normal)."""

    def __enter__(self) -> None:
        import warnings

        self._ctx = warnings.catch_warnings()
        self._ctx.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc: object) -> None:
        self._ctx.__exit__(None, None, None)


@functools.cache
def _threshold_rulesets() -> tuple[Any, Any]:
    """The shipped library and the reference rules, parsed once per process: a rule set is
    immutable, each device gets its own engine (state) over it; parsing the YAML per faulty device
    was ~5 % of a fleet's CPU."""
    from rules.ruleset import builtin_rulesets, load_ruleset

    return builtin_rulesets(), load_ruleset([REFERENCE_RULES])


def _threshold_engine(faults: list[PlannedFault]) -> Any:
    """A rules engine holding only the hard-threshold rules of this device's gradual faults."""
    wanted = {rule for f in faults if f.plan.gradual for rule in f.plan.threshold_rules}
    if not wanted:
        return None
    from rules.engine import RuleEngine
    from rules.ruleset import RuleSet

    builtin, reference = _threshold_rulesets()
    picked = [builtin.get(rule_id) or reference.get(rule_id) for rule_id in sorted(wanted)]
    compiled = [cr for cr in picked if cr is not None]
    if not compiled:
        return None
    return RuleEngine(RuleSet(tuple(compiled), (), {cr.id: cr for cr in compiled}), stale_after_ms=None)


def feed_threshold(engine: Any, device: FleetDevice, faults: list[PlannedFault], now_ms: int,
                    values: dict[str, Any], twin: HealthyTwin | None = None) -> None:
    """The first raise of a fault's hard-threshold rule inside the fault is its ``threshold_ms`` —
    unless the fault-free twin raised it too (:class:`HealthyTwin`), decided one step later."""
    if twin is not None:
        twin.observe(now_ms)
        waiting, twin.candidates = twin.candidates, []
        for fault, rule, at_ms in waiting:  # raised at the previous step
            if fault.threshold_ms is None and not twin.explains(rule, at_ms, now_ms - at_ms):
                fault.threshold_ms = at_ms
    for event in engine.process(device.id, device.kind, now_ms, values, profile=device.profile):
        if event.state != "raise":
            continue
        for fault in faults:
            if (event.rule in fault.plan.threshold_rules and fault.threshold_ms is None
                    and fault.start_ms <= now_ms <= fault.end_ms):
                if twin is None or not fault.plan.gradual:
                    fault.threshold_ms = now_ms
                else:
                    twin.candidates.append((fault, event.rule, now_ms))


def labels_jsonl(run: SimRun) -> bytes:
    """The ground truth as JSON lines (device, fault, start/end ms, gradual, threshold_ms, params)."""
    lines = [orjson.dumps({"device": f.device, "fault": f.plan.fault, "start_ms": f.start_ms, "end_ms": f.end_ms,
                           "gradual": f.plan.gradual, "threshold_ms": f.threshold_ms, "params": f.params,
                           "seed": run.seed}) for f in run.faults]
    return b"\n".join(lines) + b"\n"
