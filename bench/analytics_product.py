"""The product-path evaluation (issue 15): the service's own schedule over many seeds and start
dates, with operating variants the calibration never saw, and intervals on every figure.

What runs is what the service runs, minus PostgreSQL: every simulated day each device is
retrained by :func:`cloud.analytics.retrain.decide` on its last 14 days (suspect hours masked,
gated against its healthy reference) — the decision :func:`cloud.analytics.jobs.train` takes —
and scored in ``step_h``-hour passes by :func:`cloud.analytics.timeline.advance`, whose events
are applied to an in-memory store with the database's rules (one row per episode, one open per
detector). A community's devices of one kind run in lock-step (all retrained, then all scored,
every day), so the meters' frames carry the community load of the day's baselines as
``jobs.score`` attaches it. The limits are the shipped ones (``cloud/analytics/limits.json``, calibrated on
seed 1 without variants); evaluation seeds start at 100, so calibration and evaluation never
share a seed or a variant.

Variants the calibration never saw (drawn per device from the evaluation seed):

- slow bearing wear, 0.05–1 %/day, on half of the bearing-wear faults;
- operating changes on pumps: the setpoint moved by ±0.4 bar, demand ×1.1–1.4 (both counted:
  any detection on such a pump after the change that matches no fault is a false work order);
- sensor offset (+0.1 bar on the outlet pressure) and noise (1 % on current) on some pumps;
- missing hours: 2 % of hours at random, and a 6-hour outage on some devices.

- holidays: the Spring Festival (15–23 Feb 2026) and National Day (1–7 Oct) weeks lower every
  device's demand (:data:`HOLIDAY_DEMAND`), and it comes back after them; their false alarms
  are also counted apart (``holiday_false_alarms`` per ``holiday_device_weeks``). The weeks are
  the product's own calendar (:mod:`cloud.analytics.daycalendar`, from the ``holidays`` library:
  the State Council's notice), and the frames the service scores carry that calendar, as the
  database's frames do.

- nuisance fault codes: on half of the lifts, about :data:`NUISANCE_PER_WEEK` self-clearing codes a
  week (floor position lost, door open / close fault: :data:`simulators.physics.elevator.NUISANCE_CODES`),
  each seen by one sample only and never labelled; a detection on such a lift within
  ``GRACE_MS`` of one that matches no fault is a ``nuisance_code_false_work_orders``. They are drawn
  from their own generator, so adding them moved no other variant and no other figure.

- a repair: on half of the pumps with bearing wear the bearing is replaced
  :data:`REPAIR_AFTER_DAYS` after the wear began (the fault ends at that labelled time) and the
  service is told the way the product is — the work order resolved then, which
  :func:`cloud.analytics.jobs.train` turns into ``repaired`` for :func:`retrain.decide` once the
  training window starts after it (:func:`community_schedule`'s ``repairs``); a second bearing
  wear starts :data:`SECOND_FAULT_AFTER_DAYS` after the repair. Counted:
  ``false_alarms_after_repair`` (detections after the repair matching no label) and
  ``second_fault_recall``. Own generator, like the nuisance codes.

- duty/standby alternation: a third of the pumps without a setpoint or demand change run as one
  pump of a pair that hands duty over every day (08:00) or every week (Monday 08:00), the standby
  pump's demand 0 (the other serves it), from installation on (training included); faults on them
  stay. ``standby_false_work_orders``: detections on them that match no fault (the leak channels
  raise them: not fixed yet, see ``docs/analytics.md``). Own generator.

Detections count as the product turns them into work orders: one alarm per fault of a device
(:meth:`DeviceStore.work_orders`), so a second channel that sees an open fault adds no false one.

Figures, per fault kind and for the *inferred* faults (wear, drift, leak, dry run, phase loss:
read from physics) apart from the *self-reported* ones (fault codes and door flags): recall with
a Wilson 95 % interval, false alarms per device-week with an exact Poisson 95 % interval, the
lead-time distribution (min / median; a detection after the hard threshold is a *negative* lead,
counted as late, never as early; a threshold that never fired in the run gives a censored lead
— at least the rest of the run — reported as such).
"""

from __future__ import annotations

import logging
import math
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from bench.analytics_eval import GRACE_MS, frame_of
from bench.analytics_scoring import evaluate
from cloud.analytics import retrain
from cloud.analytics.daycalendar import DayCalendar
from cloud.analytics.daycalendar import spans as spans_of
from cloud.analytics.detection import Detection
from cloud.analytics.detectors import DETECTORS
from cloud.analytics.detectors.base import Params
from cloud.analytics.errors import NotEnoughData
from cloud.analytics.frames import DAY_MS, HOUR_MS, HourlyFrame, mask_hours, span
from cloud.analytics.jobs import shipped_limits
from cloud.analytics.timeline import Advance, Clear, OpenDetection, Raise, advance, cell_of, cell_range
from simulators.labelled_fleet import (
    FaultLabel,
    FaultPlan,
    OperatingChange,
    PlannedFault,
    build_fleet,
    plan_faults,
    run_devices,
)
from simulators.physics.elevator import NUISANCE_CODES

log = logging.getLogger(__name__)

START_TIMES: dict[str, int] = {
    "winter": 1_767_571_200_000,          # 2026-01-05 00:00 UTC
    "spring-festival": 1_770_076_800_000,  # 2026-02-03: the 2026 Spring Festival week (17 Feb) is scored
    "summer": 1_782_864_000_000,          # 2026-07-01
    "national-day": 1_788_912_000_000,    # 2026-09-09: scoring covers the October holiday week
}
CALENDAR = DayCalendar()
"""The product's calendar of a community in Asia/Shanghai without days of its own."""
TRAVEL_DAYS = 7
"""Holiday blocks at least this long empty the simulated building (the Spring Festival and
National Day "golden weeks": 15–23 Feb and 1–7 Oct 2026, by the calendar). Shorter blocks
(New Year, Mid-Autumn: 3 days) keep ordinary demand in the simulation — an assumption, like the
factors below; the product does not judge occupancy on them either way."""
HOLIDAY_DEMAND: dict[str, float] = {"pump": 0.7, "elevator": 0.6, "gate": 0.6, "meter": 0.85}
"""Demand during a holiday, per device kind (water, hall calls, passages, common-area load); the
calibration fleet has no holiday (it runs 1 Jan – 12 Feb 2026), so this is a variant it never saw."""
SELF_REPORTED = frozenset({"passengers_trapped", "door_lock_fault", "out_of_leveling", "forced_open", "held_open"})
"""Faults the device reports itself (fault codes, door flags); everything else is inferred."""
TRAIN_DAYS = 14


def wear_floor_percent() -> float:
    """The smallest current shift the pump's wear channels can alarm on (the lowest shipped limit of
    its ``bearing_wear`` channels), in percent of current — compared with what each slow-wear label
    shows in *current* (:func:`wear_current_shift`), not with its wear percent: the motor's
    magnetising current does not grow with wear, so 8 % wear is ~4 % current at part load, and
    comparing the wear percent with a current limit counted labels as reachable that no current
    reading could show (issue 15). A label under the floor is reported apart
    (``slow_wear_past_floor_*``), not hidden and not counted as found."""
    from cloud.analytics.detectors import DETECTORS

    detector = DETECTORS["pump"]
    params = detector.hyper(shipped_limits().get("pump", {}))
    return 100 * min(detector.limit(params, c) for c in detector.channels if c.fault == "bearing_wear")


def wear_current_shift(frame: HourlyFrame, label_start_ms: int, until_ms: int) -> float:
    """How much more current (a fraction) a worn pump draws at the end of its label than it did
    healthy: the median, over the running hours of the last 3 days before ``until_ms``, of the
    current against a fit of the same pump on its hours before the wear began (the product's
    regression as the measuring instrument: current at the same frequency and pressure). NaN when
    the pump has too few healthy or final running hours to say.

    Why measured and not computed from the wear rate: the share of the current that wear moves
    depends on the operating point (the magnetising part is constant), so the physically
    findable labels are the ones whose *current* moved past the floor."""
    detector = DETECTORS["pump"]
    params = detector.hyper(shipped_limits().get("pump", {}))
    label_start_ms -= label_start_ms % HOUR_MS
    until_ms -= until_ms % HOUR_MS
    try:
        healthy = detector.fit_baseline(span(frame, frame.start_ms, label_start_ms), params)
    except NotEnoughData:
        return float("nan")
    ratio = detector.statistics(span(frame, until_ms - 3 * DAY_MS, until_ms), healthy, params).context["current_ratio"]
    valid = ratio[~np.isnan(ratio)]
    return float(np.median(valid)) if valid.size >= 12 else float("nan")


EVAL_SEED_BASE = 100


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score 95 % interval of a proportion (``(0, 1)`` without trials)."""
    if trials == 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def _poisson_cdf(k: int, mean: float) -> float:
    """P(X <= k) for X ~ Poisson(mean), summed in log space (k is a count of alarms: small)."""
    if mean <= 0:
        return 1.0
    return sum(math.exp(i * math.log(mean) - mean - math.lgamma(i + 1)) for i in range(k + 1))


def poisson_rate(events: int, exposure: float) -> tuple[float, float]:
    """Exact (Garwood) 95 % interval of a Poisson rate per unit of ``exposure``, by bisection on
    the Poisson CDF (no scipy in the bench's imports; a few dozen iterations are plenty)."""
    if exposure <= 0:
        return 0.0, math.inf

    def solve(target: float, k: int) -> float:
        low, high = 0.0, max(10.0, 10.0 * (k + 1))
        for _ in range(100):
            mid = (low + high) / 2
            if _poisson_cdf(k, mid) > target:
                low = mid
            else:
                high = mid
        return (low + high) / 2

    lower = 0.0 if events == 0 else solve(0.975, events - 1)  # P(X >= events) = 0.025
    upper = solve(0.025, events)  # P(X <= events) = 0.025
    return lower / exposure, upper / exposure


@dataclass(slots=True)
class DeviceStore:
    """``analytics_detections`` + ``analytics_references`` + the active baseline of one device."""

    rows: dict[tuple[str, int], Detection] = field(default_factory=dict)
    cleared: dict[tuple[str, int], int | None] = field(default_factory=dict)
    reference: Params | None = None
    reference_end: int | None = None
    """End of the window the reference was fitted on (``analytics_references.window_end``)."""
    baseline: Params | None = None
    scored_until: int | None = None

    def open_at(self, at_ms: int) -> dict[str, OpenDetection]:
        return {name: OpenDetection(name, detected) for (name, detected), c in self.cleared.items()
                if detected <= at_ms and (c is None or c >= at_ms)}

    def any_open(self) -> bool:
        return any(c is None for c in self.cleared.values())

    def work_orders(self) -> list[Detection]:
        """The detections that open a work order under the product's rule — one alarm per fault
        (:func:`cloud.analytics.jobs.alarm_rule`): a detection raised while another channel's
        detection of the same fault is still open only updates that alarm, so the evaluation's
        false work orders are counted as a butler would receive them."""
        opened: list[Detection] = []
        open_until: dict[str, float] = {}  # per fault: the latest clearing of the detections so far
        for key, det in sorted(self.rows.items(), key=lambda item: (item[1].detected_ms, item[0])):
            if open_until.get(det.fault, -math.inf) <= det.detected_ms:
                opened.append(det)
            cleared = self.cleared.get(key)
            until = math.inf if cleared is None else cleared
            open_until[det.fault] = max(open_until.get(det.fault, -math.inf), until)
        return opened

    def suspect(self, end_ms: int) -> list[tuple[int, int]]:
        return [(det.start_ms, c if c is not None else end_ms) for key, det in self.rows.items()
                for c in [self.cleared[key]]]

    def apply(self, outcome: Advance) -> None:
        for event in outcome.events:
            if isinstance(event, Raise):
                det = event.detection
                key = (det.detector, det.detected_ms)
                if key in self.rows or any(c is None and k[0] == det.detector for k, c in self.cleared.items()):
                    continue
                self.rows[key] = det
                self.cleared[key] = None
            elif isinstance(event, Clear):
                key = (event.detector, event.detected_ms)
                if key in self.cleared and self.cleared[key] is None:
                    self.cleared[key] = event.at_ms


@dataclass(slots=True)
class Variant:
    device: str
    kind: str
    at_ms: int


@dataclass(slots=True)
class FleetOutcome:
    labels: list[FaultLabel]
    detections: list[Detection]
    scored: dict[str, tuple[int, int]]
    variants: list[Variant]
    wear_rate: dict[str, float]
    """Bearing-wear label device → %/day."""
    wear_shift: dict[str, float] = field(default_factory=dict)
    """Slow-wear label device → its current shift at the label's end (:func:`wear_current_shift`)."""
    cpu_s: float = 0.0
    """CPU seconds the fleet took (simulation + schedule), for the scale figures."""
    holidays: list[tuple[int, int]] = field(default_factory=list)
    """Holiday spans inside the run (every device's demand lower)."""
    nuisance: list[tuple[str, int]] = field(default_factory=list)
    """(lift, time) of each nuisance code shown."""
    repairs: dict[str, int] = field(default_factory=dict)
    """Repaired pump → when its work order was resolved (the bearing replaced)."""
    standby: list[str] = field(default_factory=list)
    """Pumps alternating duty with a (not simulated) partner."""


def _variants(fleet: Sequence[Any], faults: list[PlannedFault], rng: np.random.Generator, start_ms: int,
              days: int) -> tuple[dict[str, list[OperatingChange]], list[Variant]]:
    changes: dict[str, list[OperatingChange]] = {}
    variants: list[Variant] = []
    faulty = {f.device for f in faults}
    for fault in faults:
        if fault.plan.fault == "bearing_wear" and rng.random() < 0.5:
            fault.params["percent_per_day"] = float(rng.uniform(0.05, 1.0))
    for device in fleet:
        if device.kind != "pump" or device.id in faulty or rng.random() >= 0.6:
            continue
        at = start_ms + int(rng.uniform(TRAIN_DAYS + 2, days - 3) * DAY_MS) // HOUR_MS * HOUR_MS
        if rng.random() < 0.5:
            setpoint = 4.0 + float(rng.choice([-0.4, 0.4]))
            changes[device.id] = [OperatingChange(at, setpoint=setpoint)]
            variants.append(Variant(device.id, "setpoint", at))
        else:
            changes[device.id] = [OperatingChange(at, demand_factor=float(rng.uniform(1.1, 1.4)))]
            variants.append(Variant(device.id, "demand", at))
    return changes, variants


NUISANCE_PER_WEEK = 3.0
NUISANCE_PLAN = FaultPlan("elevator", "nuisance_code", False, (0.0, 0.0), lambda _rng: {})
"""Not a fault: switched like one so the model shows the code, never a label."""


def nuisance_codes(fleet: Sequence[Any], seed: int, start_ms: int, days: int,
                   step_s: int) -> dict[str, list[PlannedFault]]:
    """Self-clearing codes on half of the lifts, ~:data:`NUISANCE_PER_WEEK` a week, each on from a
    minute before a sample to a minute after it (so exactly one sample shows it: what seconds of a
    code leave in the hourly rollup when the poll happens to see it). Their own generator: the
    draws of the other variants stay where they were."""
    rng = np.random.default_rng([seed, start_ms // DAY_MS, 16])
    step_ms = step_s * 1000
    out: dict[str, list[PlannedFault]] = {}
    for device in fleet:
        if device.kind != "elevator" or rng.random() >= 0.5:
            continue
        for _ in range(int(rng.poisson(NUISANCE_PER_WEEK * days / 7))):
            sample = (start_ms + int(rng.uniform(HOUR_MS, days * DAY_MS - HOUR_MS))) // step_ms * step_ms
            code = int(rng.choice(NUISANCE_CODES))
            out.setdefault(device.id, []).append(
                PlannedFault(device.id, NUISANCE_PLAN, sample - 60_000, sample + 60_000, {"code": code}))
    return out


def duty_standby(fleet: Sequence[Any], variants: list[Variant], seed: int, start_ms: int, days: int,
                 changes: dict[str, list[OperatingChange]]) -> list[str]:
    """A third of the pumps without an operating variant alternate duty daily or weekly at 08:00
    local (00:00 UTC), starting on duty or on standby; returns them."""
    rng = np.random.default_rng([seed, start_ms // DAY_MS, 18])
    varied = {v.device for v in variants}
    out: list[str] = []
    for device in fleet:
        if device.kind != "pump" or device.id in varied or rng.random() >= 1 / 3:
            continue
        period = DAY_MS if rng.random() < 0.5 else 7 * DAY_MS
        on_duty = bool(rng.random() < 0.5)
        # Mondays: the week's hand-over (1970-01-01 was a Thursday: day 4 of the epoch is a Monday)
        at = start_ms if period == DAY_MS else start_ms + ((4 - start_ms // DAY_MS) % 7) * DAY_MS
        hand_overs = [OperatingChange(start_ms, standby=not on_duty)]
        at += period if at == start_ms else 0
        while at < start_ms + days * DAY_MS:
            on_duty = not on_duty
            hand_overs.append(OperatingChange(at, standby=not on_duty))
            at += period
        changes.setdefault(device.id, []).extend(hand_overs)
        out.append(device.id)
    return out


REPAIR_AFTER_DAYS = 4.0
SECOND_FAULT_AFTER_DAYS = 3.0


def repairs(faults: list[PlannedFault], seed: int, start_ms: int, days: int) -> dict[str, int]:
    """Half of the bearing wears are repaired :data:`REPAIR_AFTER_DAYS` after they began (the label
    ends there) and a second, new bearing wear follows :data:`SECOND_FAULT_AFTER_DAYS` later on
    the same pump until the run ends (appended to ``faults``: a label like any other). Returns
    pump → repair time."""
    rng = np.random.default_rng([seed, start_ms // DAY_MS, 17])
    end_ms = start_ms + days * DAY_MS
    out: dict[str, int] = {}
    for fault in list(faults):
        # fast wear only (the slow-wear figures are per pump, and a pump has one wear rate there)
        if fault.plan.fault != "bearing_wear" or rng.random() >= 0.5 or float(fault.params["percent_per_day"]) <= 1.0:
            continue
        repaired = fault.start_ms + int(REPAIR_AFTER_DAYS * DAY_MS)
        second = repaired + int(SECOND_FAULT_AFTER_DAYS * DAY_MS)
        if second + 2 * DAY_MS > end_ms or repaired >= fault.end_ms:
            continue
        fault.end_ms = repaired
        fault.threshold_ms = None
        faults.append(PlannedFault(fault.device, fault.plan, second, end_ms,
                                   {"percent_per_day": float(rng.uniform(6.0, 10.0))}))
        out[fault.device] = repaired
    return out


def holiday_changes(fleet: Sequence[Any], start_ms: int, days: int,
              changes: dict[str, list[OperatingChange]]) -> list[tuple[int, int]]:
    """Every device's demand drops for the holidays inside the run (and comes back after them);
    returns the holiday spans, whose false alarms are counted apart as well."""
    # whole blocks first (a run that starts inside a golden week still sees it as one), then clipped
    blocks = [(lo, hi) for lo, hi in spans_of(CALENDAR, start_ms - 10 * DAY_MS, start_ms + (days + 10) * DAY_MS)
              if hi - lo >= TRAVEL_DAYS * DAY_MS]
    spans = [(max(lo, start_ms), min(hi, start_ms + days * DAY_MS)) for lo, hi in blocks
             if lo < start_ms + days * DAY_MS and hi > start_ms]
    for lo, hi in spans:
        for device in fleet:
            factor = HOLIDAY_DEMAND.get(device.kind)
            if factor is None:
                continue
            changes.setdefault(device.id, []).extend(
                [OperatingChange(lo, demand_factor=factor), OperatingChange(hi, demand_factor=1 / factor)])
    return spans


def _degrade(frame: HourlyFrame, rng: np.random.Generator) -> HourlyFrame:
    """Missing hours for every device; offset and noise on some pumps (from the start: sensors as
    installed, which the baseline must simply learn)."""
    drop = rng.random(frame.hours) < 0.02
    if rng.random() < 0.3:
        first = int(rng.integers(0, max(1, frame.hours - 6)))
        drop[first:first + 6] = True
    for table in (frame.avg, frame.min, frame.max):
        for column in table.values():
            column[drop] = np.nan
    if frame.kind == "pump":
        if rng.random() < 0.2:
            for table in (frame.avg, frame.min, frame.max):
                if "outlet_pressure" in table:
                    table["outlet_pressure"] = table["outlet_pressure"] + 0.1
        if rng.random() < 0.2 and "current" in frame.avg:
            noise = 1.0 + rng.normal(0.0, 0.01, frame.hours)
            for table in (frame.avg, frame.min, frame.max):
                table["current"] = table["current"] * noise
    return frame


def service_schedule(frame: HourlyFrame, params: Params, first_ms: int, end_ms: int,
                     step_h: int = 6) -> DeviceStore:
    """Daily retrain + ``step_h``-hour scoring passes from ``first_ms`` (the end of the first
    training window) to ``end_ms``, as the service does, for one device without peers."""
    return community_schedule([frame], params, first_ms, end_ms, step_h)[frame.device]


class _DayFrames:
    """The frames one day's passes score: spans of the device's frame, and for meters with the
    community's load of the day's baselines (computed once per range for all meters)."""

    def __init__(self, frames: Sequence[HourlyFrame], stores: dict[str, DeviceStore], params: Params,
                 peers: bool) -> None:
        self.frames, self.stores, self.params, self.peers = frames, stores, params, peers
        self.detector = DETECTORS[frames[0].kind]
        self.loads: dict[tuple[int, int], Any] = {}

    def frame(self, frame: HourlyFrame, lo: int, hi: int) -> HourlyFrame:
        out = span(frame, lo, hi)
        if not self.peers:
            return out
        if (lo, hi) not in self.loads:
            self.loads[(lo, hi)] = self.detector.peer_feature(
                [span(f, lo, hi) for f in self.frames], [self.stores[f.device].baseline for f in self.frames],
                self.params)
        return self.detector.with_peer_feature(out, self.loads[(lo, hi)])


def community_schedule(frames: Sequence[HourlyFrame], params: Params, first_ms: int, end_ms: int,
                       step_h: int = 6, *, peers: bool = False,
                       repairs: dict[str, int] | None = None) -> dict[str, DeviceStore]:
    """:func:`service_schedule` for the devices of one kind in one community, in lock-step as the
    service runs them: every day all of them are retrained, then scored. With ``peers`` (meters)
    each frame a pass scores carries the community's feature (the meters' community load, from the
    same hours of every meter and each meter's baseline of the day — what ``jobs.score`` attaches).
    ``repairs``: device → when its work order was resolved; ``repaired`` is what ``jobs.train``
    passes — resolved after the reference's window and no later than the training window's start."""
    detector = DETECTORS[frames[0].kind]
    stores = {frame.device: DeviceStore() for frame in frames}
    day = first_ms
    while day < end_ms:
        for frame in frames:
            store = stores[frame.device]
            train_from = day - TRAIN_DAYS * DAY_MS
            window = mask_hours(span(frame, train_from, day), store.suspect(day))
            fixed = (repairs or {}).get(frame.device)
            repaired = (fixed is not None and store.reference_end is not None
                        and store.reference_end < fixed <= train_from)
            decision = retrain.decide(detector, window, params, reference=store.reference, previous=store.baseline,
                                      open_detection=store.any_open(), repaired=repaired)
            if decision.new_reference is not None:
                store.reference = decision.baseline
                store.reference_end = day
            store.baseline = decision.baseline
        load = _DayFrames(frames, stores, params, peers)
        stop = min(end_ms, day + DAY_MS)
        for frame in frames:
            store = stores[frame.device]
            cursor = day
            while cursor < stop and store.baseline is not None:
                until = min(stop, cursor + step_h * HOUR_MS)
                resume = min(cursor, store.scored_until) if store.scored_until is not None else cursor
                begin = cell_range(cell_of(resume))[0]
                outcome = advance(detector, partial(load.frame, frame), store.baseline, params, from_ms=resume,
                                  end_ms=until, open_before=store.open_at(begin), not_before_ms=day)
                store.apply(outcome)
                store.scored_until = until
                cursor = until
        day = stop
    return stores


def run_fleet(seed: int, start_ms: int, *, devices: int, days: int, step_h: int = 6,
              step_s: int = 1200) -> FleetOutcome:
    """One evaluation fleet (seed, start date) through the service's schedule.

    One BLAS thread: the retrain's regression is a few hundred rows, and on a busy two-core
    machine OpenBLAS's thread pool made each fit ten times slower (0.19 s against 0.02 s); the
    fleets run in parallel processes instead. (``threadpool_limits`` only reaches libraries already
    loaded, hence the import first: the regression's scipy is otherwise loaded lazily, after it.)
    """
    import sklearn.linear_model  # noqa: F401  # load scipy's and sklearn's BLAS before limiting it
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]  # scikit-learn's dependency

    started = time.process_time()
    with threadpool_limits(1):
        out = _run_fleet(seed, start_ms, devices=devices, days=days, step_h=step_h, step_s=step_s)
    out.cpu_s = time.process_time() - started
    return out


def _run_fleet(seed: int, start_ms: int, *, devices: int, days: int, step_h: int, step_s: int) -> FleetOutcome:
    fleet = build_fleet(devices, seed, start_ms)
    faults = plan_faults(fleet, seed, start_ms, days, TRAIN_DAYS)
    rng = np.random.default_rng([seed, start_ms // DAY_MS, 15])
    changes, variants = _variants(fleet, faults, rng, start_ms, days)
    repaired = repairs(faults, seed, start_ms, days)
    standby = duty_standby(fleet, variants, seed, start_ms, days, changes)
    by_device: dict[str, list[PlannedFault]] = {}
    for fault in faults:
        by_device.setdefault(fault.device, []).append(fault)
    limits = shipped_limits()
    detections: list[Detection] = []
    scored: dict[str, tuple[int, int]] = {}
    first_ms, end_ms = start_ms + TRAIN_DAYS * DAY_MS, start_ms + days * DAY_MS
    holidays = holiday_changes(fleet, start_ms, days, changes)
    nuisance = nuisance_codes(fleet, seed, start_ms, days, step_s)
    switched = {d: by_device.get(d, []) + nuisance.get(d, []) for d in set(by_device) | set(nuisance)}
    hourly = run_devices(fleet, switched, start_ms, days * 24, step_s, changes=changes)
    groups: dict[tuple[str, str], list[HourlyFrame]] = {}
    for device in fleet:
        frame = _degrade(frame_of(hourly.pop(device.id)), rng)
        frame.calendar = CALENDAR  # what jobs.load_frame gives the service: the community's calendar
        if frame.kind in DETECTORS:
            groups.setdefault((frame.kind, frame.community), []).append(frame)
    for (kind, _), frames in groups.items():
        detector = DETECTORS[kind]
        params = detector.hyper(limits.get(kind, {}))
        params.setdefault("limits", {c.name: c.floor for c in detector.channels})
        stores = community_schedule(frames, params, first_ms, end_ms, step_h, peers=detector.peers,
                                    repairs=repaired)
        for name, store in stores.items():
            detections += store.work_orders()
            scored[name] = (first_ms, end_ms)
    labels = [FaultLabel(f.device, f.plan.fault, f.start_ms, f.end_ms, f.plan.gradual, f.threshold_ms)
              for f in faults]
    wear = {f.device: float(f.params["percent_per_day"]) for f in faults if f.plan.fault == "bearing_wear"}
    by_id = {frame.device: frame for frames in groups.values() for frame in frames}
    shift = {f.device: wear_current_shift(by_id[f.device], f.start_ms, min(f.end_ms, end_ms)) for f in faults
             if f.plan.fault == "bearing_wear" and wear[f.device] <= 1.0 and f.device in by_id}
    shown = [(f.device, f.start_ms + 60_000) for codes in nuisance.values() for f in codes]
    return FleetOutcome(labels, detections, scored, variants, wear, holidays=holidays, nuisance=shown,
                        repairs=repaired, standby=standby, wear_shift=shift)


@dataclass(slots=True)
class Tally:
    labels: int = 0
    detected: int = 0
    leads_h: list[float] = field(default_factory=list)
    censored_leads_h: list[float] = field(default_factory=list)
    negative: int = 0


def summarise(outcomes: Iterable[tuple[str, int, FleetOutcome]], *, seeds: int, starts: int,
              devices: int, days: int) -> dict[str, float | int | str]:
    tallies: dict[str, Tally] = {}
    slow = Tally()
    precision_hits = precision_all = 0
    false_alarms = 0
    fault_free_weeks = 0.0
    variant_false = {"setpoint": 0, "demand": 0}
    # the same work orders per channel ("pump.current_deficit" → count): the counts say *that* a
    # variant raised false orders, the split says which channel to look at (issue 15)
    variant_channels: dict[str, Counter[str]] = {"setpoint": Counter(), "demand": Counter(), "standby": Counter()}
    variant_weeks = 0.0
    by_detector: dict[str, int] = {}
    reachable = Tally()
    floor_percent = wear_floor_percent()
    holiday_false = 0
    holiday_weeks = 0.0
    nuisance_shown = nuisance_false = 0
    repaired_pumps = after_repair_false = second_labels = second_found = 0
    standby_pumps = standby_false = 0
    standby_weeks = 0.0
    cpu: list[float] = []
    negative_cases: list[str] = []
    for start_name, seed, out in outcomes:
        cpu.append(out.cpu_s)
        report = evaluate(out.labels, out.detections, scored=out.scored, grace_ms=GRACE_MS)
        for det in report.unmatched:
            if not any(lb.device == det.device and lb.start_ms <= det.detected_ms <= lb.end_ms + GRACE_MS
                       for lb in out.labels):
                by_detector[det.detector] = by_detector.get(det.detector, 0) + 1
                # around a holiday: while the building is empty and the two days demand comes back
                if any(lo <= det.detected_ms < hi + 2 * DAY_MS for lo, hi in out.holidays):
                    holiday_false += 1
        for lo, hi in out.holidays:
            holiday_weeks += sum(max(0, min(hi + 2 * DAY_MS, end) - max(lo, begin))
                                 for begin, end in out.scored.values()) / (7 * DAY_MS)
        precision_hits += report.true_detections
        precision_all += report.detections
        false_alarms += report.false_alarms
        fault_free_weeks += report.fault_free_device_weeks
        missed = {id(lb) for lb in report.missed}
        for label in out.labels:
            if label.device not in out.scored:
                continue
            tally = tallies.setdefault(label.fault, Tally())
            tally.labels += 1
            is_slow = label.fault == "bearing_wear" and out.wear_rate.get(label.device, 99.0) <= 1.0
            # wear whose current has not moved past the lowest wear limit by the end of the label
            # cannot be told from noise by anyone: reported apart, not hidden
            grown = 100 * out.wear_shift.get(label.device, float("nan"))
            if is_slow:
                slow.labels += 1
                if grown >= floor_percent:
                    reachable.labels += 1
            if id(label) in missed:
                continue
            tally.detected += 1
            if is_slow:
                slow.detected += 1
                if grown >= floor_percent:
                    reachable.detected += 1
            if not label.gradual:
                continue
            found = sorted((d.detected_ms, d.detector) for d in out.detections
                           if d.device == label.device and label.start_ms <= d.detected_ms <= label.end_ms + GRACE_MS)
            first = found[0][0]
            targets = [tally, slow] if is_slow else [tally]
            for target in targets:
                if label.threshold_ms is None:
                    target.censored_leads_h.append((min(label.end_ms, out.scored[label.device][1]) - first) / HOUR_MS)
                elif label.threshold_ms >= first:
                    target.leads_h.append((label.threshold_ms - first) / HOUR_MS)
                else:
                    target.negative += 1
            if label.threshold_ms is not None and label.threshold_ms < first:
                # which fleet and pump, so a negative lead can be looked at (once per label)
                negative_cases.append(f"{seed}/{start_name}/{label.device}/{label.fault}/{found[0][1]}/"
                                      f"{(label.threshold_ms - first) / HOUR_MS:.1f}h")
        nuisance_shown += sum(1 for device, at in out.nuisance
                              if device in out.scored and out.scored[device][0] <= at < out.scored[device][1])
        nuisance_false += sum(1 for det in report.unmatched
                              if any(device == det.device and at <= det.detected_ms <= at + GRACE_MS
                                     for device, at in out.nuisance))
        for device in out.standby:
            if device in out.scored:
                standby_pumps += 1
                standby_weeks += (out.scored[device][1] - out.scored[device][0]) / (7 * DAY_MS)
                on_standby = [det for det in report.unmatched if det.device == device]
                standby_false += len(on_standby)
                variant_channels["standby"].update(det.detector for det in on_standby)
        for device, fixed in out.repairs.items():
            if device not in out.scored:
                continue
            repaired_pumps += 1
            after_repair_false += sum(1 for det in report.unmatched
                                      if det.device == device and det.detected_ms >= fixed)
            second = [lb for lb in out.labels if lb.device == device and lb.start_ms > fixed]
            second_labels += len(second)
            second_found += sum(1 for lb in second if id(lb) not in missed)
        for variant in out.variants:
            hi = out.scored[variant.device][1]
            variant_weeks += (hi - variant.at_ms) / (7 * DAY_MS)
            after_change = [d for d in out.detections if d.device == variant.device and d.detected_ms >= variant.at_ms]
            variant_false[variant.kind] += len(after_change)
            variant_channels[variant.kind].update(d.detector for d in after_change)
    inferred = [t for k, t in tallies.items() if k not in SELF_REPORTED]
    reported = [t for k, t in tallies.items() if k in SELF_REPORTED]
    inf_labels, inf_hit = sum(t.labels for t in inferred), sum(t.detected for t in inferred)
    rep_labels, rep_hit = sum(t.labels for t in reported), sum(t.detected for t in reported)
    fa_low, fa_high = poisson_rate(false_alarms, fault_free_weeks)
    figures: dict[str, float | int | str] = {
        "seeds": seeds, "start_times": starts, "devices": devices, "simulated_days": days,
        "inferred_labels": inf_labels,
        "inferred_recall": round(inf_hit / inf_labels, 4) if inf_labels else 1.0,
        "inferred_recall_low95": round(wilson(inf_hit, inf_labels)[0], 4),
        "inferred_recall_high95": round(wilson(inf_hit, inf_labels)[1], 4),
        "self_reported_labels": rep_labels,
        "self_reported_recall": round(rep_hit / rep_labels, 4) if rep_labels else 1.0,
        "self_reported_recall_low95": round(wilson(rep_hit, rep_labels)[0], 4),
        "precision": round(precision_hits / precision_all, 4) if precision_all else 1.0,
        "precision_low95": round(wilson(precision_hits, precision_all)[0], 4),
        "false_alarms": false_alarms,
        "fault_free_device_weeks": round(fault_free_weeks, 1),
        "false_alarms_per_device_week": round(false_alarms / fault_free_weeks, 4) if fault_free_weeks else 0.0,
        "false_alarms_per_device_week_low95": round(fa_low, 4),
        "false_alarms_per_device_week_high95": round(fa_high, 4),
        "setpoint_change_false_work_orders": variant_false["setpoint"],
        "setpoint_change_false_work_orders_by_channel": _by_channel(variant_channels["setpoint"]),
        "demand_change_false_work_orders": variant_false["demand"],
        "demand_change_false_work_orders_by_channel": _by_channel(variant_channels["demand"]),
        "operating_variant_device_weeks": round(variant_weeks, 1),
        "holiday_false_alarms": holiday_false,
        "nuisance_codes_scored": nuisance_shown,
        "nuisance_code_false_work_orders": nuisance_false,
        "standby_pumps": standby_pumps,
        "standby_device_weeks": round(standby_weeks, 1),
        "standby_false_work_orders": standby_false,
        "standby_false_work_orders_by_channel": _by_channel(variant_channels["standby"]),
        "repaired_pumps": repaired_pumps,
        "false_alarms_after_repair": after_repair_false,
        "second_fault_labels": second_labels,
        "second_fault_recall": round(second_found / second_labels, 4) if second_labels else 1.0,
        "holiday_device_weeks": round(holiday_weeks, 1),
        "slow_wear_labels": slow.labels,
        "slow_wear_recall": round(slow.detected / slow.labels, 4) if slow.labels else 1.0,
        "slow_wear_floor_current_percent": round(floor_percent, 2),
        "slow_wear_past_floor_labels": reachable.labels,
        "slow_wear_past_floor_recall": round(reachable.detected / reachable.labels, 4) if reachable.labels else 1.0,
        "negative_leads": sum(t.negative for t in tallies.values()),
        "negative_lead_cases": "; ".join(negative_cases),
        "fleet_cpu_seconds_mean": round(statistics.fmean(cpu), 1) if cpu else 0.0,
        "cpu_seconds_total": round(sum(cpu), 1),
    }
    for name, count in sorted(by_detector.items()):
        figures[f"false_alarms_{name}"] = count
    slow_all = slow.leads_h + slow.censored_leads_h
    figures["slow_wear_lead_hours_median"] = round(statistics.median(slow_all), 1) if slow_all else 0.0
    figures["slow_wear_leads_censored"] = len(slow.censored_leads_h)
    # apart: the leads whose trip fired in the run, and the censored ones (at least this long)
    # (a key is left out when no label of its kind exists: 0.0 would read as a lead of zero hours)
    if slow.leads_h:
        figures["slow_wear_tripped_lead_hours_median"] = round(statistics.median(slow.leads_h), 1)
    if slow.censored_leads_h:
        figures["slow_wear_censored_lead_hours_median"] = round(statistics.median(slow.censored_leads_h), 1)
    for kind, tally in sorted(tallies.items()):
        low, high = wilson(tally.detected, tally.labels)
        figures[f"{kind}_labels"] = tally.labels
        figures[f"{kind}_recall"] = round(tally.detected / tally.labels, 4) if tally.labels else 1.0
        figures[f"{kind}_recall_low95"] = round(low, 4)
        figures[f"{kind}_recall_high95"] = round(high, 4)
        leads = tally.leads_h + tally.censored_leads_h
        if leads:
            figures[f"{kind}_lead_hours_min"] = round(min(leads), 1)
            figures[f"{kind}_lead_hours_median"] = round(statistics.median(leads), 1)
            figures[f"{kind}_leads_censored"] = len(tally.censored_leads_h)
        if tally.negative:
            figures[f"{kind}_negative_leads"] = tally.negative
    return figures


def _by_channel(counts: Counter[str]) -> str:
    """``"pump.current_deficit:17 pump.flow_excess:2"``: most first, then by name; "" for none (a
    string key like ``negative_lead_cases``: the JSON's figures stay flat)."""
    return " ".join(f"{name}:{n}" for name, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def run_product_evaluation(*, seeds: int = 20, starts: Sequence[str] = tuple(START_TIMES), devices: int = 200,
                           days: int = 30, step_h: int = 6, workers: int = 2) -> dict[str, float | int | str]:
    """Every (seed, start date) fleet through the service's schedule, ``workers`` fleets at a
    time (one process each: the machine has two cores and the fleets share nothing)."""
    from concurrent.futures import ProcessPoolExecutor

    jobs = [(name, EVAL_SEED_BASE + index) for index in range(seeds) for name in starts]
    outcomes: list[tuple[str, int, FleetOutcome]] = []
    if workers <= 1:
        for name, seed in jobs:
            log.info("analytics product path: seed %d, %s", seed, name)
            outcomes.append((name, seed, run_fleet(seed, START_TIMES[name], devices=devices, days=days,
                                                   step_h=step_h)))
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [(name, seed, pool.submit(run_fleet, seed, START_TIMES[name], devices=devices, days=days,
                                                step_h=step_h)) for name, seed in jobs]
            for name, seed, future in futures:
                outcomes.append((name, seed, future.result()))
                log.info("analytics product path: seed %d, %s done", seed, name)
    return summarise(outcomes, seeds=seeds, starts=len(starts), devices=devices, days=days)
