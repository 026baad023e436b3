"""Many pump sets advanced at once: :meth:`PumpModel.step` vectorised across devices with numpy.

Why this exists: the labelled evaluation (``python -m bench analytics``, issue 15) runs 20 seeds ×
4 start dates × 200+ devices for 30 simulated days. A pump step simulates its last 30 s in 0.5 s
controller substeps (60 Python calls per 20-minute sample), which made the ~30 pump sets of a
fleet cost more than everything else together. Every pump of a fleet samples on the same time
grid, so one substep can be computed for all of them with array operations.

What it is *not*: a second physics. :func:`advance_pumps_to` reads the state of real
:class:`PumpModel` objects, runs exactly the arithmetic of ``PumpModel.step`` /
``_quasi_static`` / ``_dynamic`` (same order of operations, same branches, as masks) and writes the
state back, so faults (:meth:`DeviceModel.set_fault`), operator writes, ``values()`` and the rules
engine keep working on the models as before. Each model's own generator is drawn in the scalar
model's order (demand noise, the two sleep-cycle uniforms when the set sleeps, one suction normal
per substep), so a bank run reproduces the scalar run up to floating-point rounding of
``x ** n`` against ``x * x``; ``tests/simulators/physics/test_pump_bank.py`` compares them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from simulators.physics.base import DAY
from simulators.physics.pump import F_MAX, F_MIN, FAULT_EXTERNAL, MAX_DYNAMIC, SUBSTEP, PumpModel, demand_shape

_STATE = ("pressure", "suction", "freq", "integral", "trip_since", "low_flow_s", "dry_s", "low_p_s", "flow",
          "power_kw", "motor_temp", "run_hours", "energy", "demand_noise")
_PARAMS = ("rated_kw", "q_nom", "h0", "k", "setpoint", "start_delta", "mains", "demand_max", "vessel", "auto_reset_s")
_SQRT3 = math.sqrt(3)


Vec = npt.NDArray[np.float64]
Flags = npt.NDArray[np.bool_]


class _Bank:
    """Column arrays of the models' state and parameters (one entry per model)."""

    pressure: Vec
    suction: Vec
    freq: Vec
    integral: Vec
    trip_since: Vec
    low_flow_s: Vec
    dry_s: Vec
    low_p_s: Vec
    flow: Vec
    power_kw: Vec
    motor_temp: Vec
    run_hours: Vec
    energy: Vec
    demand_noise: Vec
    rated_kw: Vec
    q_nom: Vec
    h0: Vec
    k: Vec
    setpoint: Vec
    start_delta: Vec
    mains: Vec
    demand_max: Vec
    vessel: Vec
    auto_reset_s: Vec
    running: Flags
    tripped: Flags
    dry: Flags
    leak: Vec
    wear_rate: Vec
    wear_since: Vec
    i_nom: Vec
    fault_code: npt.NDArray[np.int64]
    starts: npt.NDArray[np.int64]

    def __init__(self, models: Sequence[PumpModel]) -> None:
        self.models = models
        for name in _STATE + _PARAMS:
            setattr(self, name, np.array([float(getattr(m, name)) for m in models]))
        self.running = np.array([m.running for m in models])
        self.tripped = np.array([m.tripped for m in models])
        self.fault_code = np.array([m.fault_code for m in models], dtype=np.int64)
        self.starts = np.array([m.starts for m in models], dtype=np.int64)
        self.dry = np.array(["dry_run" in m.faults for m in models])
        self.leak = np.array([float(m.faults["pressure_loss"].get("leak_m3h", 1.0 * m.q_nom))
                              if "pressure_loss" in m.faults else 0.0 for m in models])
        self.wear_rate = np.array([float(m.faults.get("bearing_wear", {}).get("percent_per_day", 3.0)) / 100.0
                                   if m.wear_since is not None else 0.0 for m in models])
        self.wear_since = np.array([m.wear_since if m.wear_since is not None else 0.0 for m in models])
        self.any_wear = bool(self.wear_rate.any())
        self.any_dry = bool(self.dry.any())
        self.i_nom = self.rated_kw * 1000.0 / (_SQRT3 * 400.0 * 0.85)

    def write_back(self) -> None:
        for i, m in enumerate(self.models):
            for name in _STATE:
                setattr(m, name, float(getattr(self, name)[i]))
            m.running = bool(self.running[i])
            m.tripped = bool(self.tripped[i])
            m.fault_code = int(self.fault_code[i])
            m.starts = int(self.starts[i])

    # ------------------------------------------------------------ the model's helpers, as arrays
    def demand(self, t: float) -> Vec:
        out: Vec = np.maximum(self.demand_max * demand_shape(t) * self.demand_noise + self.leak, 0.0)
        return out

    def wear(self, t: float) -> Vec | float:
        if not self.any_wear:
            return 0.0  # as the scalar model's _wear() without the fault
        return self.wear_rate * (t - self.wear_since) / DAY

    def electrics(self, t: float, dry: Flags) -> None:
        ratio = self.freq / 50.0
        hyd = self.flow / 3600.0 * np.maximum(self.pressure - self.suction, 0.0) * 1e5 / 1000.0
        cube = ratio ** 3
        power = hyd / (0.68 * 0.9) + 0.07 * self.rated_kw * cube
        if self.any_dry:
            power = np.where(dry, 0.22 * self.rated_kw * cube, power)
        if self.any_wear:
            wear = self.wear(t)
            power = power * (1.0 + wear)
            power = power + 0.015 * self.rated_kw * wear * 10 * ratio
        self.power_kw = np.where(self.running, power, 0.0)

    def current(self) -> Vec:
        on = self.running & (self.freq > 0)
        volts = 400.0 * np.where(on, self.freq, 50.0) / 50.0
        amps = np.hypot(self.power_kw * 1000.0 / (_SQRT3 * volts * 0.85), 0.3 * self.i_nom)
        return np.where(on, amps, 0.0)

    def temperature(self, t: float, dt: float) -> None:
        target = 25.0 + 55.0 * (self.current() / self.i_nom) ** 2 + 30.0 * self.wear(t)
        self.motor_temp = self.motor_temp + (target - self.motor_temp) * (1.0 - math.exp(-dt / 1200.0))

    def low_pressure(self, dt: float) -> None:
        self.low_p_s = np.where(self.pressure < self.setpoint - 1.0, self.low_p_s + dt, 0.0)

    def auto_reset(self, t: float, tripped: Flags) -> None:
        if not tripped.any():
            return
        reset = tripped & ~self.dry & (self.auto_reset_s > 0) & (t - self.trip_since >= self.auto_reset_s)
        self.tripped = self.tripped & ~reset
        self.fault_code = np.where(reset, 0, self.fault_code)
        self.dry_s = np.where(reset, 0.0, self.dry_s)

    def trip_if_dry(self, t: float, mask: Flags) -> None:
        if not mask.any():
            return
        trip = mask & (self.dry_s > 30.0) & ~self.tripped
        self.tripped = self.tripped | trip
        self.trip_since = np.where(trip, t, self.trip_since)
        self.fault_code = np.where(trip, FAULT_EXTERNAL, self.fault_code)
        self.running = self.running & ~trip
        self.freq = np.where(trip, 0.0, self.freq)


def advance_pumps_to(models: Sequence[PumpModel], t: float) -> None:
    """``model.advance_to(t)`` for every model, which must all be at the same time ``model.t``."""
    if not models:
        return
    t0 = models[0].t
    if any(m.t != t0 for m in models):
        raise ValueError("pump bank: every model must be at the same time")
    dt = t - t0
    if dt <= 0:
        return
    bank = _Bank(models)
    a = math.exp(-dt / 600.0)
    first = np.array([m.rng.standard_normal() for m in models])
    bank.demand_noise = 1.0 + (bank.demand_noise - 1.0) * a + 0.15 * math.sqrt(1 - a * a) * first
    quasi = max(0.0, dt - MAX_DYNAMIC)
    now = t0
    if quasi > 0:
        now = _quasi_static(bank, now, quasi)
    remaining = dt - quasi
    steps: list[float] = []
    while remaining > 1e-9:
        steps.append(min(SUBSTEP, remaining))
        remaining -= steps[-1]
    normals = np.array([m.rng.standard_normal(len(steps)) for m in models]).reshape(len(models), len(steps))
    for j, h in enumerate(steps):
        now += h
        _dynamic(bank, now, h, normals[:, j])
    bank.write_back()
    for m in models:
        m.t = t
        m.version += 1


def _quasi_static(bank: _Bank, t0: float, dt: float) -> float:
    t = t0 + dt
    dry = bank.dry
    bank.suction = np.where(dry, 0.05, bank.mains)
    q = bank.demand(t)
    tripped = bank.tripped.copy()
    normal = ~tripped & ~dry
    sleeping = normal & (q < 0.05 * bank.q_nom)
    working = normal & ~sleeping
    draws = np.zeros((len(bank.models), 2))
    for i in np.flatnonzero(sleeping).tolist():
        draws[i] = bank.models[i].rng.random(2)
    # tripped: maybe reset, the vessel drains, nothing else moves
    bank.auto_reset(t, tripped)
    drained = np.maximum(bank.suction, bank.pressure - bank.vessel * q * dt / 3600.0)
    bank.pressure = np.where(tripped, drained, bank.pressure)
    bank.flow = np.where(tripped, 0.0, bank.flow)
    # suction lost
    bank.dry_s = np.where(dry & ~tripped, bank.dry_s + dt, bank.dry_s)
    bank.trip_if_dry(t, dry & ~tripped)
    # sleeping: count the start/stop cycles of the vessel
    cycle = 60.0 + bank.start_delta / np.maximum(bank.vessel * np.maximum(q, 0.01) / 3600.0, 1e-6)
    bank.starts = bank.starts + np.where(sleeping, np.floor(dt / cycle + draws[:, 0]), 0).astype(np.int64)
    bank.run_hours = np.where(sleeping, bank.run_hours + dt * (60.0 / cycle) / 3600.0, bank.run_hours)
    bank.running = np.where(sleeping, False, bank.running)
    bank.pressure = np.where(sleeping, bank.setpoint - bank.start_delta * draws[:, 1], bank.pressure)
    # running settled at the demanded flow
    need = bank.setpoint - bank.suction + bank.k * q * q
    f = 50.0 * np.sqrt(np.maximum(need, 0.0) / bank.h0)
    bank.starts = bank.starts + (working & ~bank.running).astype(np.int64)
    bank.running = bank.running | working
    freq = np.minimum(np.maximum(f, F_MIN), F_MAX)
    bank.freq = np.where(sleeping, 0.0, np.where(working, freq, bank.freq))
    bank.integral = np.where(working, freq, bank.integral)
    held = np.where(f > F_MAX, bank.suction + bank.h0 * (freq / 50.0) ** 2 - bank.k * q * q, bank.setpoint)
    bank.pressure = np.where(working, held, bank.pressure)
    bank.flow = np.where(sleeping, 0.0, np.where(working, q, bank.flow))
    bank.run_hours = np.where(working, bank.run_hours + dt / 3600.0, bank.run_hours)
    # only the sets that were neither tripped nor dry reach the electrics
    before = (bank.power_kw.copy(), bank.energy.copy(), bank.motor_temp.copy(), bank.low_p_s.copy())
    bank.electrics(t, np.zeros_like(dry))
    bank.energy = bank.energy + bank.power_kw * dt / 3600.0
    bank.temperature(t, dt)
    bank.low_pressure(dt)
    bank.power_kw, bank.energy, bank.motor_temp, bank.low_p_s = (
        np.where(normal, new, old) for new, old in zip(
            (bank.power_kw, bank.energy, bank.motor_temp, bank.low_p_s), before, strict=True))
    return t


def _dynamic(bank: _Bank, t: float, h: float, normal: Vec) -> None:
    dry = bank.dry
    bank.suction = np.maximum(0.02, np.where(dry, 0.05, bank.mains) + 0.02 * normal)
    q = bank.demand(t)
    bank.auto_reset(t, bank.tripped)
    error = bank.setpoint - bank.pressure
    start = ~bank.running & ~bank.tripped & (error > bank.start_delta)
    bank.running = bank.running | start
    bank.starts = bank.starts + start.astype(np.int64)
    bank.integral = np.where(start, F_MIN + 5.0, bank.integral)
    bank.low_flow_s = np.where(start, 0.0, bank.low_flow_s)
    on = bank.running.copy()
    integral = np.minimum(np.maximum(bank.integral + 2.0 * error * h, F_MIN), F_MAX)
    target = np.minimum(np.maximum(integral + 8.0 * error, F_MIN), F_MAX)
    freq = bank.freq + (target - bank.freq) * min(1.0, h / 1.0)
    head = np.where(dry, 0.0, bank.h0 * (freq / 50.0) ** 2)
    p_eq = bank.suction + head - bank.k * q ** 2
    moved = bank.pressure + (p_eq - bank.pressure) * (1.0 - math.exp(-h / 2.0))
    pressure = np.where((p_eq >= bank.pressure) | (head > 0), moved, bank.pressure)
    flow = np.where(dry, 0.0, np.maximum(0.0, q + (p_eq - pressure) / np.maximum(bank.vessel, 1.0) * 3600 / 2.0))
    bank.integral = np.where(on, integral, bank.integral)
    bank.freq = np.where(on, freq, bank.freq)
    bank.pressure = np.where(on, pressure, bank.pressure)
    bank.flow = np.where(on, flow, bank.flow)
    bank.run_hours = np.where(on, bank.run_hours + h / 3600.0, bank.run_hours)
    low_flow = on & ~dry & (q < 0.05 * bank.q_nom) & (error < 0.1)
    bank.low_flow_s = np.where(low_flow, bank.low_flow_s + h, np.where(on, 0.0, bank.low_flow_s))
    sleep = low_flow & (bank.low_flow_s > 30.0)
    bank.running = bank.running & ~sleep
    bank.freq = np.where(sleep, 0.0, bank.freq)
    if bank.any_dry:
        bank.dry_s = np.where(on & dry, bank.dry_s + h, np.where(on, 0.0, bank.dry_s))
        bank.trip_if_dry(t, on & dry)
    else:
        bank.dry_s = np.where(on, 0.0, bank.dry_s)
    off = ~bank.running
    bank.freq = np.where(off, 0.0, bank.freq)
    bank.flow = np.where(off, 0.0, bank.flow)
    bank.pressure = np.where(off, np.maximum(bank.suction, bank.pressure - bank.vessel * q * h / 3600.0),
                             bank.pressure)
    bank.electrics(t, dry)
    bank.energy = bank.energy + bank.power_kw * h / 3600.0
    bank.temperature(t, h)
    bank.low_pressure(h)
