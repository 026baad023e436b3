"""Elevator physics: an event-driven car serving hall calls, with door cycles and traffic peaks.

Calls arrive as a Poisson process whose rate follows the residential day: a morning down-peak
(residents leave from upper floors to the lobby), an evening up-peak (lobby to upper floors), a
lighter midday and an almost idle night. The car drives to the caller, cycles its doors, carries the
passengers (load %), cycles again; run count, run hours and door cycles advance as in a real
controller. The state machine processes events one by one, so any step length is exact; very long
steps (huge speed-ups) fast-forward the counters statistically after a cap of events.

Faults follow GB/T 24476 clause 11 items (and ``nuisance_code``: a self-clearing code that does not
stop the car, :data:`NUISANCE_CODES`): ``passengers_trapped`` (car stops between floors with
people inside, doors closed), ``door_lock_fault`` (door-lock circuit open: the car stops at a floor
and refuses to run), ``out_of_leveling`` (stops outside the door zone), ``overspeed`` (speed spike,
then the safety gear stops the car), ``door_open_while_moving``, and ``clock_skew`` of the box clock.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from device_profiles import Profile
from device_profiles.codec import Value
from simulators.physics.base import DeviceModel, bump, hour_of_day, is_weekend

FLOOR_M = 3.0
DOOR_MOVE_S = 2.5
DWELL_S = 4.0
MAX_EVENTS = 400

FAULT_CODES = {"passengers_trapped": 1, "door_lock_fault": 2, "door_open_while_moving": 3, "overspeed": 5,
               "out_of_leveling": 8}
ALARM_BITS = {"passengers_trapped": 0, "door_lock_fault": 1, "door_open_while_moving": 2, "overspeed": 4,
              "out_of_leveling": 7}
STOPPING_FAULTS = ("passengers_trapped", "door_lock_fault", "out_of_leveling", "overspeed")
_STOPPING = frozenset(STOPPING_FAULTS)
DOOR = {"closed": 0, "open": 1, "opening": 2, "closing": 3}
NUISANCE_CODES = (11, 12, 13)
"""Codes a controller shows for seconds and clears itself: floor position lost (re-learnt on the next
trip), door open fault and door close fault (the operator retries). ``nuisance_code`` (a fault of
this model with a ``code`` parameter) shows one of them without stopping the car: the evaluation's
nuisance-code variant (issue 15)."""


def call_rate_per_hour(t: float, peak: float) -> float:
    h = hour_of_day(t)
    if is_weekend(t):
        return peak * (0.08 + 0.45 * bump(h, 10.5, 2.0) + 0.5 * bump(h, 18.0, 2.5))
    return peak * (0.05 + 1.0 * bump(h, 7.8, 0.8) + 0.35 * bump(h, 12.2, 1.2) + 0.9 * bump(h, 18.8, 1.2))


class ElevatorModel(DeviceModel):
    kind = "elevator"

    def __init__(self, device_id: str, profile: Profile, rng: np.random.Generator, t0: float,
                 params: Mapping[str, Any] | None = None) -> None:
        super().__init__(device_id, profile, rng, t0, params)
        p = self.params
        self.lowest = 1 - int(p.get("basements", 1))   # internal levels; level 0 is shown as floor -1
        self.highest = int(p.get("floors", 18))
        self.lobby = 1
        self.rated_speed = float(p.get("speed_ms", 1.75))
        self.peak_calls = float(p.get("peak_calls_per_hour", 60.0))
        self.floor = self.lobby
        self.pos = float(self.floor)            # in floors (fractional between floors)
        self.phase = "idle"                     # idle|door_opening|door_open|door_closing|moving|stopped
        self.phase_start = t0
        self.phase_end = math.inf
        self.move_from = self.pos
        self.target = self.floor
        self.passengers = 0
        self.pending: list[tuple[int, int]] = []   # (origin, destination) calls
        self.carrying: int | None = None           # destination of the riders on board
        self.next_call = t0 + self._interarrival(t0)
        self.run_count = int(p.get("run_count", 100_000 + 400_000 * rng.random()))
        self.run_hours = float(p.get("run_hours", 2_000 + 8_000 * rng.random()))
        self.door_cycles = int(self.run_count * 1.9)
        self.service_mode = 0
        self.offset = 0.0                          # leveling error in floors when stopped abnormally
        self.overspeed_until = 0.0

    # ---------------------------------------------------------------- traffic
    def _interarrival(self, t: float) -> float:
        rate = max(call_rate_per_hour(t, self.peak_calls), 0.01) / 3600.0
        return float(self.rng.exponential(1.0 / rate))

    def _new_call(self, t: float) -> None:
        h = hour_of_day(t)
        upper = int(self.rng.integers(2, self.highest + 1))
        morning, evening = bump(h, 7.8, 1.0), bump(h, 18.8, 1.3)
        u = self.rng.random()
        if u < 0.8 * morning:
            call = (upper, self.lobby)
        elif u < 0.8 * (morning + evening):
            call = (self.lobby, upper)
        elif self.rng.random() < 0.1 and self.lowest < self.lobby:
            call = (int(self.rng.integers(self.lowest, self.lobby)), self.lobby)   # car park
        else:
            call = (upper, self.lobby) if self.rng.random() < 0.5 else (self.lobby, upper)
        if len(self.pending) < 20:
            self.pending.append(call)

    # ---------------------------------------------------------------- state machine
    def _blocked(self) -> bool:
        # the fleet evaluation asks this ~2.7 million times per 30-day fleet: a set test on the
        # (usually empty) fault dict instead of a generator over the stopping faults
        return self.service_mode != 0 or (bool(self.faults) and not _STOPPING.isdisjoint(self.faults))

    def _enter(self, phase: str, t: float, duration: float) -> None:
        self.phase = phase
        self.phase_start = t
        self.phase_end = t + duration

    def _start_trip(self, t: float, dest: int) -> None:
        self.target = dest
        if dest == self.floor:
            self._enter("door_opening", t, DOOR_MOVE_S)
            self.door_cycles += 1
            return
        self.move_from = float(self.floor)
        distance = abs(dest - self.floor) * FLOOR_M
        self._enter("moving", t, distance / self.rated_speed + 2.0)
        self.run_count += 1

    def _advance_phase(self, t: float) -> None:
        # _enter written out: this runs ~100 000 times per elevator and simulated month
        phase = self.phase
        if phase == "moving":
            self.run_hours += (t - self.phase_start) / 3600.0
            self.floor = self.target
            self.pos = float(self.floor)
            self.phase, self.phase_start, self.phase_end = "door_opening", t, t + DOOR_MOVE_S
            self.door_cycles += 1
        elif phase == "door_opening":
            if self.carrying is not None and self.floor == self.carrying:
                self.passengers = 0
                self.carrying = None
            elif self.pending and self.pending[0][0] == self.floor and self.carrying is None:
                _, dest = self.pending.pop(0)
                self.passengers = int(self.rng.integers(1, 6))
                self.carrying = dest
            self.phase, self.phase_start, self.phase_end = "door_open", t, t + (DWELL_S + 0.8 * self.passengers)
        elif phase == "door_open":
            self.phase, self.phase_start, self.phase_end = "door_closing", t, t + DOOR_MOVE_S
        elif phase == "door_closing":
            self.phase, self.phase_start, self.phase_end = "idle", t, math.inf
            self._dispatch(t)
        elif phase == "idle":
            self._dispatch(t)

    def _dispatch(self, t: float) -> None:
        if self.phase != "idle" or self._blocked():
            return
        if self.carrying is not None:
            self._start_trip(t, self.carrying)
        elif self.pending:
            self._start_trip(t, self.pending[0][0])

    def step(self, dt: float) -> None:
        end = self.t + dt
        t = self.t
        events = 0
        while events < MAX_EVENTS:
            nxt = min(self.phase_end, self.next_call)
            if nxt > end:
                break
            t = nxt
            if self.next_call <= self.phase_end:
                if not self._blocked():
                    self._new_call(t)
                self.next_call = t + self._interarrival(t)
                if self.phase == "idle":
                    self._dispatch(t)
            else:
                self._advance_phase(t)
            events += 1
        if events >= MAX_EVENTS:
            self._fast_forward(t, end)
        if self.phase == "moving":
            frac = min(1.0, (end - self.phase_start) / max(self.phase_end - self.phase_start, 1e-9))
            self.pos = self.move_from + (self.target - self.move_from) * frac

    def _fast_forward(self, t: float, end: float) -> None:
        """Huge steps: count the trips the rest of the interval would have had, land idle at the lobby."""
        span = end - t
        trips = call_rate_per_hour(t + span / 2, self.peak_calls) * span / 3600.0 if not self._blocked() else 0.0
        n = int(self.rng.poisson(max(trips, 0.0)))
        self.run_count += 2 * n
        self.door_cycles += 2 * n
        self.run_hours += n * 2 * (self.highest / 2 * FLOOR_M / self.rated_speed + 2.0) / 3600.0
        self.pending.clear()
        self.carrying = None
        self.passengers = 0
        if not self._blocked():
            self.floor = self.lobby
            self.pos = float(self.lobby)
            self._enter("idle", end, math.inf)
        self.next_call = end + self._interarrival(end)

    # ---------------------------------------------------------------- faults and commands
    def on_fault(self, fault: str, active: bool) -> None:
        if fault not in STOPPING_FAULTS:
            return
        if active:
            if fault in ("passengers_trapped", "overspeed"):
                base = min(max(self.floor, self.lowest), self.highest - 1)
                self.floor = base
                self.offset = 0.45
                if fault == "passengers_trapped" or self.passengers == 0:
                    self.passengers = max(self.passengers, int(self.rng.integers(1, 4)))
                if fault == "overspeed":
                    self.overspeed_until = self.t + float(self.faults[fault].get("spike_s", 5.0))
            elif fault == "out_of_leveling":
                self.offset = float(self.faults[fault].get("offset_floors", 0.15))
            else:
                self.offset = 0.0
            if self.phase == "moving":
                self.run_hours += (self.t - self.phase_start) / 3600.0
            self.pos = self.floor + self.offset
            self._enter("stopped", self.t, math.inf)
            self.carrying = self.carrying if self.passengers else None
        elif not self._blocked():
            # rescue: level to the nearest floor, open the doors, let people out
            self.offset = 0.0
            self.floor = round(self.pos)
            self.pos = float(self.floor)
            self.carrying = self.floor if self.passengers else None
            self._enter("door_opening", self.t, DOOR_MOVE_S)
            self.door_cycles += 1

    def write(self, point: str, value: Value) -> None:
        if point != "service_command":
            super().write(point, value)
        mode = int(value)
        self.service_mode = mode
        if mode == 0 and self.phase in ("idle", "stopped") and not self._blocked():
            self._enter("idle", self.t, math.inf)
            self._dispatch(self.t)
        self.version += 1

    # ---------------------------------------------------------------- outputs
    def values(self) -> dict[str, Value]:
        moving = self.phase == "moving"
        direction = 0
        speed = 0.0
        if moving:
            direction = 1 if self.target > self.move_from else 2
            speed = self.rated_speed * (1 if direction == 1 else -1)
        if self.t < self.overspeed_until:
            speed = 1.25 * self.rated_speed
        door = {"door_opening": "opening", "door_open": "open", "door_closing": "closing"}.get(self.phase, "closed")
        if "door_open_while_moving" in self.faults:
            door = "open"
        in_zone = not moving and abs(self.pos - round(self.pos)) < 0.05
        fault_code = 0
        alarm = 0
        for name, code in FAULT_CODES.items():
            if name in self.faults:
                fault_code = fault_code or code
                alarm |= 1 << ALARM_BITS[name]
        if not fault_code and "nuisance_code" in self.faults:
            fault_code = int(self.faults["nuisance_code"].get("code", NUISANCE_CODES[0]))
        load = round(self.passengers * 7.5)
        if load > 100:
            alarm |= 1 << 13
        ctb = 0
        if door == "open":
            ctb |= 0b1100
        if door == "closed":
            ctb |= 0b110000
        if load >= 80:
            ctb |= 1 << 6
        if load > 100:
            ctb |= 1 << 7
        level = math.floor(self.pos + 0.5)
        floor = level if level >= 1 else level - 1   # no floor 0: the level below 1 is B1 = -1
        return {
            "service_mode": self.service_mode, "car_moving": moving, "direction": direction, "floor": floor,
            "door_state": DOOR[door], "in_door_zone": in_zone, "load_percent": load,
            "passenger_present": self.passengers > 0, "fault_code": fault_code, "alarm_word": alarm,
            "ctb_input_word": ctb, "speed": round(speed, 2), "run_count": self.run_count,
            "run_hours": round(self.run_hours, 1), "door_cycles": self.door_cycles,
            "device_clock": int(self.device_time() + self.clock_skew_s) & 0xFFFFFFFF,
            "service_command": self.service_mode if self.service_mode in (0, 6) else 0,
        }
