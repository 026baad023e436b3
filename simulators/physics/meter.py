"""Energy meter physics: a building's daily load curve over three (or one) phases.

Load = base × (night floor + morning and evening peaks, weekend shifted) × a slow stochastic factor
(Ornstein–Uhlenbeck: loads wander, they do not jump). Each phase carries a fixed share with a
slowly wandering imbalance. Voltage sags with current through the feeder impedance, power factor
worsens at light load, energy integrates power. Faults: ``energy_drift`` (consumption ramps up to
+20 % — a leak or an illegal tap), ``phase_loss`` (one phase's voltage and current collapse).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from device_profiles import Profile
from device_profiles.codec import Value
from simulators.physics.base import DeviceModel, bump, hour_of_day, is_weekend


def load_shape(t: float) -> float:
    """Residential load, relative (≈0.35 at night, ≈1.0 at the evening peak)."""
    h = hour_of_day(t)
    if is_weekend(t):
        return 0.40 + 0.35 * bump(h, 10.0, 2.5) + 0.55 * bump(h, 19.5, 2.2)
    return 0.35 + 0.30 * bump(h, 7.5, 1.2) + 0.15 * bump(h, 12.5, 1.5) + 0.65 * bump(h, 20.0, 2.0)


class MeterModel(DeviceModel):
    kind = "meter"

    def __init__(self, device_id: str, profile: Profile, rng: np.random.Generator, t0: float,
                 params: Mapping[str, Any] | None = None) -> None:
        super().__init__(device_id, profile, rng, t0, params)
        self.phases = 3 if "voltage_l1" in profile.point_names else 1
        default_kw = 25.0 if self.phases == 3 else 3.0
        self.base_kw = float(self.params.get("base_kw", default_kw * (0.7 + 0.6 * rng.random())))
        share = rng.dirichlet([40.0] * 3) if self.phases == 3 else np.array([1.0])
        self.share = share
        self.nominal_v = float(self.params.get("nominal_v", 230.0))
        self.feeder_ohm = 0.02 if self.phases == 3 else 0.15
        self.ou = 1.0            # slow load factor
        self.grid_dv = 0.0       # slow grid voltage offset
        self.freq = 50.0
        self.energy_import = float(self.params.get("energy_kwh", 1000.0 + 50000.0 * rng.random()))
        self.energy_reactive = self.energy_import * 0.25
        self.energy_phase = self.energy_import * share
        self.power_demand_max = 0.0
        self.drift_since: float | None = None
        self._p = np.zeros(3)
        self._recompute()

    # ---------------------------------------------------------------- physics
    def _drift_factor(self) -> float:
        if "energy_drift" not in self.faults or self.drift_since is None:
            return 1.0
        params = self.faults["energy_drift"]
        extra = float(params.get("percent", 20.0)) / 100.0
        ramp = float(params.get("ramp_hours", 0.0)) * 3600.0
        frac = 1.0 if ramp <= 0 else min(1.0, (self.t - self.drift_since) / ramp)
        return 1.0 + extra * frac

    def on_fault(self, fault: str, active: bool) -> None:
        if fault == "energy_drift":
            self.drift_since = self.t if active else None
        self._recompute()

    def step(self, dt: float) -> None:
        # OU processes, exact discretisation so any dt is stable
        a = math.exp(-dt / 1800.0)
        self.ou = 1.0 + (self.ou - 1.0) * a + 0.08 * math.sqrt(1 - a * a) * self.rng.standard_normal()
        b = math.exp(-dt / 3600.0)
        self.grid_dv = self.grid_dv * b + 1.5 * math.sqrt(1 - b * b) * self.rng.standard_normal()
        c = math.exp(-dt / 20.0)
        self.freq = 50.0 + (self.freq - 50.0) * c + 0.02 * math.sqrt(1 - c * c) * self.rng.standard_normal()
        p_before = float(self._p.sum())
        self.t += dt / 2
        self._recompute()
        p_mid = float(self._p.sum())
        self.t -= dt / 2
        kwh = (p_before + p_mid) / 2 * dt / 3.6e6
        self.energy_import += kwh
        self.energy_phase += self._p / max(float(self._p.sum()), 1e-9) * kwh
        self.energy_reactive += kwh * 0.25
        self.power_demand_max = max(self.power_demand_max, p_mid)

    def _recompute(self) -> None:
        total_w = self.base_kw * 1000.0 * load_shape(self.t) * max(0.2, self.ou) * self._drift_factor()
        self._p = total_w * self.share
        if "phase_loss" in self.faults:
            lost = int(self.faults["phase_loss"].get("phase", 3)) - 1
            self._p[min(max(lost, 0), self.phases - 1)] = 0.0

    # ---------------------------------------------------------------- outputs
    def values(self) -> dict[str, Value]:
        h = hour_of_day(self.t)
        night_rise = 2.0 * bump(h, 3.0, 3.0)  # grid voltage is higher at night
        lost = int(self.faults["phase_loss"].get("phase", 3)) - 1 if "phase_loss" in self.faults else -1
        v, i, p, s, q, pf, ang = [], [], [], [], [], [], []
        for ph in range(self.phases):
            load = float(self._p[ph])
            fraction = load / max(self.base_kw * 1000.0 * float(self.share[ph]), 1.0)
            pf_ph = 0.86 + 0.11 * min(1.0, fraction)
            volts = self.nominal_v + 1.5 + night_rise + self.grid_dv + 0.3 * (ph - 1)
            amps = load / (volts * pf_ph)
            volts -= amps * self.feeder_ohm
            if ph == lost:
                volts, amps, pf_ph = 0.4 * self.rng.random(), 0.0, 1.0
            va = volts * amps
            v.append(volts)
            i.append(amps)
            p.append(load)
            s.append(va)
            q.append(math.sqrt(max(va * va - load * load, 0.0)))
            pf.append(pf_ph)
            ang.append(math.degrees(math.acos(min(1.0, pf_ph))))
        p_tot, s_tot, q_tot = sum(p), sum(s), sum(q)
        pf_tot = p_tot / s_tot if s_tot > 0 else 1.0
        freq = self.freq
        if self.phases == 1:
            return {
                "voltage": v[0], "current": i[0], "power": p[0], "apparent_power": s[0], "reactive_power": q[0],
                "power_factor": pf[0], "phase_angle": ang[0], "frequency": freq,
                "energy_import": self.energy_import, "energy_export": 0.0,
                "reactive_energy_import": self.energy_reactive, "reactive_energy_export": 0.0,
                "energy_total": self.energy_import, "reactive_energy_total": self.energy_reactive,
                "meter_id": float(self.params.get("unit", 1)),
            }
        out: dict[str, Value] = {}
        for ph in range(3):
            n = ph + 1
            out |= {f"voltage_l{n}": v[ph], f"current_l{n}": i[ph], f"power_l{n}": p[ph],
                    f"apparent_power_l{n}": s[ph], f"reactive_power_l{n}": q[ph], f"power_factor_l{n}": pf[ph],
                    f"phase_angle_l{n}": ang[ph],
                    f"thd_voltage_l{n}": 1.6 + 1.2 * bump(h, 20.0, 2.5),
                    f"thd_current_l{n}": 8.0 + 14.0 * (1.0 - min(1.0, p[ph] / max(1.0, self.base_kw * 400.0))),
                    f"energy_import_l{n}": float(self.energy_phase[ph]),
                    f"energy_total_l{n}": float(self.energy_phase[ph])}
        ll = [math.sqrt(v[a] ** 2 + v[b] ** 2 + v[a] * v[b]) for a, b in ((0, 1), (1, 2), (2, 0))]
        i_n = abs(complex(i[0]) + i[1] * complex(-0.5, -0.866) + i[2] * complex(-0.5, 0.866))
        out |= {
            "voltage_avg": sum(v) / 3, "current_avg": sum(i) / 3, "current_sum": sum(i),
            "power_total": p_tot, "apparent_power_total": s_tot, "reactive_power_total": q_tot,
            "power_factor": pf_tot, "phase_angle_total": math.degrees(math.acos(min(1.0, pf_tot))),
            "frequency": freq, "energy_import": self.energy_import, "energy_export": 0.0,
            "reactive_energy_import": self.energy_reactive, "reactive_energy_export": 0.0,
            "power_demand": p_tot, "power_demand_max": self.power_demand_max,
            "voltage_l1_l2": ll[0], "voltage_l2_l3": ll[1], "voltage_l3_l1": ll[2], "voltage_ll_avg": sum(ll) / 3,
            "current_neutral": i_n, "energy_total": self.energy_import,
            "reactive_energy_total": self.energy_reactive,
            "system_type": 3.0, "meter_id": float(self.params.get("unit", 1)),
        }
        return out
