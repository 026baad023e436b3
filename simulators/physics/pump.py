"""Booster pump set physics: water demand, pump curve, PI pressure control, start/stop hysteresis.

* Demand follows the residential water curve (morning and evening peaks, near zero at 3 am).
* Pump head ``H = H0·(f/50)² − k·Q²`` (affinity laws); outlet pressure relaxes towards the head the
  pump makes at the demanded flow; when the pump sleeps, the pressure vessel drains with demand.
* A PI controller sets the VFD frequency to hold the pressure setpoint. The set starts when the
  pressure falls ``start_delta`` below the setpoint and sleeps after running at minimum speed with
  no flow for a while: start/stop hysteresis, so starts and run hours accumulate as in the field.
* Electrical: hydraulic power / efficiencies + losses; V/f control means output voltage ∝ f, so
  current ∝ power / frequency (plus magnetising current); the motor heats with I².

Faults: ``dry_run`` (suction lost: no flow, low power, dry-run alarm, then the drive trips on its
external-fault input and restarts after ``auto_reset_s`` or a reset), ``bearing_wear`` (friction,
hence current and temperature, creep up by ``percent_per_day``), ``pressure_loss`` (a burst or leak
downstream: demand jumps, pressure cannot be held, low-pressure alarm).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from device_profiles import Profile
from device_profiles.codec import Value
from simulators.physics.base import DAY, DeviceModel, bump, hour_of_day

FAULT_EXTERNAL = 0x9000
F_MIN, F_MAX = 25.0, 50.0
SUBSTEP = 0.5          # s, PI controller period
MAX_DYNAMIC = 30.0     # s of a step simulated in detail; the rest quasi-statically


def demand_shape(t: float) -> float:
    h = hour_of_day(t)
    return 0.04 + 0.85 * bump(h, 7.3, 1.0) + 0.35 * bump(h, 12.0, 1.3) + 0.95 * bump(h, 20.0, 1.6)


class PumpModel(DeviceModel):
    kind = "pump"

    def __init__(self, device_id: str, profile: Profile, rng: np.random.Generator, t0: float,
                 params: Mapping[str, Any] | None = None) -> None:
        super().__init__(device_id, profile, rng, t0, params)
        p = self.params
        self.rated_kw = float(p.get("rated_kw", 7.5))
        self.q_nom = float(p.get("q_nom", 30.0))                 # m³/h at 50 Hz, half head
        self.h0 = float(p.get("h0_bar", 6.5))                    # shut-off head at 50 Hz
        self.k = self.h0 * 0.5 / self.q_nom ** 2
        self.setpoint = float(p.get("setpoint", 4.0))
        self.start_delta = float(p.get("start_delta", 0.5))
        self.mains = float(p.get("suction_bar", 1.5))
        self.demand_max = float(p.get("demand_max", 0.7 * self.q_nom * (0.8 + 0.4 * rng.random())))
        self.vessel = float(p.get("vessel_bar_per_m3", 10.0))   # bar per m³ drawn: a ~500 l membrane vessel
        self.auto_reset_s = float(p.get("auto_reset_s", 600.0))
        self.pressure = self.setpoint
        self.suction = self.mains
        self.freq = 0.0
        self.integral = 35.0
        self.running = False
        self.tripped = False
        self.trip_since = 0.0
        self.fault_code = 0
        self.low_flow_s = 0.0
        self.dry_s = 0.0
        self.low_p_s = 0.0
        self.flow = 0.0
        self.power_kw = 0.0
        self.motor_temp = 25.0
        self.run_hours = float(p.get("run_hours", 2000.0 + 8000.0 * rng.random()))
        self.starts = int(p.get("starts", 5000 + int(20000 * rng.random())))
        self.energy = float(p.get("energy_kwh", self.run_hours * 2.5))
        self.wear_since: float | None = None
        self.demand_noise = 1.0
        self.control_word = 0x040F  # remote, on
        self.speed_reference = 0.0

    # ---------------------------------------------------------------- helpers
    def _demand(self) -> float:
        q = self.demand_max * demand_shape(self.t) * self.demand_noise
        if "pressure_loss" in self.faults:
            q += float(self.faults["pressure_loss"].get("leak_m3h", 1.0 * self.q_nom))
        return max(q, 0.0)

    def _wear(self) -> float:
        if self.wear_since is None:
            return 0.0
        per_day = float(self.faults.get("bearing_wear", {}).get("percent_per_day", 3.0)) / 100.0
        return per_day * (self.t - self.wear_since) / DAY

    def on_fault(self, fault: str, active: bool) -> None:
        if fault == "bearing_wear":
            self.wear_since = self.t if active else None

    def _head(self, f: float) -> float:
        return self.h0 * (f / 50.0) ** 2

    def _electrics(self, dry: bool) -> None:
        if not self.running:
            self.power_kw = 0.0
            return
        ratio = self.freq / 50.0
        if dry:
            self.power_kw = 0.22 * self.rated_kw * ratio ** 3
        else:
            hyd_kw = self.flow / 3600.0 * max(self.pressure - self.suction, 0.0) * 1e5 / 1000.0
            self.power_kw = hyd_kw / (0.68 * 0.9) + 0.07 * self.rated_kw * ratio ** 3
        self.power_kw *= 1.0 + self._wear()
        self.power_kw += 0.015 * self.rated_kw * self._wear() * 10 * ratio   # bearing friction

    def current(self) -> float:
        if not self.running or self.freq <= 0:
            return 0.0
        volts = 400.0 * self.freq / 50.0
        i_nom = self.rated_kw * 1000.0 / (math.sqrt(3) * 400.0 * 0.85)
        return math.hypot(self.power_kw * 1000.0 / (math.sqrt(3) * volts * 0.85), 0.3 * i_nom)

    # ---------------------------------------------------------------- physics
    def step(self, dt: float) -> None:
        a = math.exp(-dt / 600.0)
        noise = 0.15 * math.sqrt(1 - a * a) * self.rng.standard_normal()
        self.demand_noise = 1.0 + (self.demand_noise - 1.0) * a + noise
        quasi = max(0.0, dt - MAX_DYNAMIC)
        if quasi > 0:
            self._quasi_static(quasi)
        remaining = dt - quasi
        while remaining > 1e-9:
            h = min(SUBSTEP, remaining)
            self._dynamic(h)
            remaining -= h
        self.t -= dt  # advance_to() sets the final time; substeps moved it for the demand curve

    def _quasi_static(self, dt: float) -> None:
        """Long steps at high speed-up: the controller is settled; count cycles and hours."""
        self.t += dt
        self.suction = 0.05 if "dry_run" in self.faults else self.mains
        q = self._demand()
        if self.tripped:
            self._maybe_auto_reset(dt)
            self.pressure = max(self.suction, self.pressure - self.vessel * q * dt / 3600.0)
            self.flow = 0.0
            return
        if "dry_run" in self.faults:
            self.dry_s += dt
            self._trip_if_dry()
            return
        q_sleep = 0.05 * self.q_nom
        if q < q_sleep:
            cycle = 60.0 + self.start_delta / max(self.vessel * max(q, 0.01) / 3600.0, 1e-6)
            self.starts += int(dt / cycle + self.rng.random())
            self.run_hours += dt * (60.0 / cycle) / 3600.0
            self.running = False
            self.freq = 0.0
            self.flow = 0.0
            self.pressure = self.setpoint - self.start_delta * self.rng.random()
        else:
            need = self.setpoint - self.suction + self.k * q * q
            f = 50.0 * math.sqrt(max(need, 0.0) / self.h0)
            if not self.running:
                self.starts += 1
            self.running = True
            self.freq = min(max(f, F_MIN), F_MAX)
            self.integral = self.freq
            self.pressure = self.suction + self._head(self.freq) - self.k * q * q if f > F_MAX else self.setpoint
            self.flow = q
            self.run_hours += dt / 3600.0
        self._electrics(dry=False)
        self.energy += self.power_kw * dt / 3600.0
        self._temperature(dt)
        self._low_pressure(dt)

    def _dynamic(self, h: float) -> None:
        self.t += h
        dry = "dry_run" in self.faults
        self.suction = max(0.02, (0.05 if dry else self.mains) + 0.02 * self.rng.standard_normal())
        q_demand = self._demand()
        if self.tripped:
            self._maybe_auto_reset(h)
        error = self.setpoint - self.pressure
        if not self.running and not self.tripped and error > self.start_delta:
            self.running = True
            self.starts += 1
            self.integral = F_MIN + 5.0
            self.low_flow_s = 0.0
        if self.running:
            self.integral = min(max(self.integral + 2.0 * error * h, F_MIN), F_MAX)
            target = min(max(self.integral + 8.0 * error, F_MIN), F_MAX)
            self.freq += (target - self.freq) * min(1.0, h / 1.0)   # drive ramp
            head = 0.0 if dry else self._head(self.freq)
            p_eq = self.suction + head - self.k * q_demand ** 2
            if p_eq >= self.pressure or head > 0:
                self.pressure += (p_eq - self.pressure) * (1.0 - math.exp(-h / 2.0))
            self.flow = 0.0 if dry else max(0.0, q_demand + (p_eq - self.pressure) / max(self.vessel, 1.0) * 3600 / 2.0)
            self.run_hours += h / 3600.0
            # sleep: the low-flow detection sees (almost) no draw while the pressure is made
            if not dry and q_demand < 0.05 * self.q_nom and error < 0.1:
                self.low_flow_s += h
                if self.low_flow_s > 30.0:
                    self.running = False
                    self.freq = 0.0
            else:
                self.low_flow_s = 0.0
            if dry:
                self.dry_s += h
                self._trip_if_dry()
            else:
                self.dry_s = 0.0
        if not self.running:
            self.freq = 0.0
            self.flow = 0.0
            self.pressure = max(self.suction, self.pressure - self.vessel * q_demand * h / 3600.0)
        self._electrics(dry)
        self.energy += self.power_kw * h / 3600.0
        self._temperature(h)
        self._low_pressure(h)

    def _trip_if_dry(self) -> None:
        if self.dry_s > 30.0 and not self.tripped:
            self.tripped = True
            self.trip_since = self.t
            self.fault_code = FAULT_EXTERNAL
            self.running = False
            self.freq = 0.0

    def _maybe_auto_reset(self, dt: float) -> None:
        if "dry_run" not in self.faults and self.auto_reset_s > 0 and self.t - self.trip_since >= self.auto_reset_s:
            self.reset()

    def _temperature(self, dt: float) -> None:
        i_nom = self.rated_kw * 1000.0 / (math.sqrt(3) * 400.0 * 0.85)
        target = 25.0 + 55.0 * (self.current() / i_nom) ** 2 + 30.0 * self._wear()
        self.motor_temp += (target - self.motor_temp) * (1.0 - math.exp(-dt / 1200.0))

    def _low_pressure(self, dt: float) -> None:
        if self.pressure < self.setpoint - 1.0:
            self.low_p_s += dt
        else:
            self.low_p_s = 0.0

    def reset(self) -> None:
        if self.tripped and "dry_run" not in self.faults:
            self.tripped = False
            self.fault_code = 0
            self.dry_s = 0.0

    # ---------------------------------------------------------------- outputs
    def alarms(self) -> int:
        bits = 0
        if self.dry_s > 10.0 or (self.tripped and self.fault_code == FAULT_EXTERNAL):
            bits |= 1 << 0
        if self.suction < 0.5:
            bits |= 1 << 1
        if self.low_p_s > 10.0:
            bits |= 1 << 2
        if self.pressure > self.setpoint + 1.5:
            bits |= 1 << 3
        if self.current() > 1.1 * self.rated_kw * 1000.0 / (math.sqrt(3) * 400.0 * 0.85):
            bits |= 1 << 4
        if self.motor_temp > 95.0:
            bits |= 1 << 5
        return bits

    def values(self) -> dict[str, Value]:
        alarms = self.alarms()
        status = 1 << 9
        if not self.tripped:
            status |= 0b11
        if self.running:
            status |= 1 << 2
        if self.tripped:
            status |= 1 << 3
        if alarms:
            status |= 1 << 7
        if self.running and abs(self.setpoint - self.pressure) < 0.15:
            status |= 1 << 8
        return {
            "control_word": self.control_word, "speed_reference": self.speed_reference, "status_word": status,
            "frequency": round(self.freq, 2), "current": round(self.current(), 1),
            "dc_voltage": 540 + round(self.rng.normal(0, 2)),
            "power": round(self.power_kw, 1), "fault_code": self.fault_code,
            "outlet_pressure": round(min(max(self.pressure, 0.0), 16.0), 2),
            "suction_pressure": round(min(max(self.suction, 0.0), 10.0), 2),
            "pressure_setpoint": round(self.setpoint, 2), "pump_alarms": alarms,
            "run_hours": round(self.run_hours, 1), "start_count": self.starts, "running": self.running,
            "flow": round(self.flow, 1), "motor_temperature": round(self.motor_temp, 1),
            "energy": int(self.energy), "fault_reset": False,
        }

    def write(self, point: str, value: Value) -> None:
        if point == "pressure_setpoint":
            self.setpoint = float(value)
        elif point == "fault_reset":
            if value:
                self.reset()
        elif point == "control_word":
            word = int(value)
            if word & (1 << 7) and not self.control_word & (1 << 7):
                self.reset()
            self.control_word = word
        elif point == "speed_reference":
            self.speed_reference = float(value)
        else:
            super().write(point, value)
        self.version += 1
