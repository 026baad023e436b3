"""Hourly aggregates of one device as numpy columns — the one input every detector reads.

Why hourly: the models look for changes over hours and days (bearing wear, energy drift, slow
pressure loss), which the 1-hour rollup (``telemetry_1h``: avg/min/max/n per device, metric,
hour) already carries at 1/3600 of the raw volume. The same frame is built from the database
(:func:`from_rollup_rows`) and by the evaluation fleet straight from the simulators' physics, so
the detectors cannot tell the difference — which is the point of evaluating them that way.

Hours without data are NaN; the time axis is dense (``start_ms + i * HOUR_MS``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from cloud.analytics.daycalendar import DayCalendar, DayType

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS

Array = npt.NDArray[np.float64]


@dataclass(slots=True)
class HourlyFrame:
    """``avg``/``min``/``max`` of each metric per hour for one device (NaN where no data)."""

    device: str
    kind: str
    start_ms: int
    hours: int
    avg: dict[str, Array] = field(default_factory=dict)
    min: dict[str, Array] = field(default_factory=dict)
    max: dict[str, Array] = field(default_factory=dict)
    community: str = ""
    calendar: DayCalendar | None = None
    """The community's day calendar (holidays, make-up workdays): an input of scoring like the
    data itself; None = every day is an ordinary day of the week."""

    def __post_init__(self) -> None:
        if self.start_ms % HOUR_MS:
            raise ValueError(f"start_ms {self.start_ms} is not aligned to an hour")
        if self.hours < 0:
            raise ValueError("hours must be >= 0")
        for table in (self.avg, self.min, self.max):
            for metric, column in table.items():
                if column.shape != (self.hours,):
                    raise ValueError(f"{metric}: column has shape {column.shape}, expected ({self.hours},)")

    @property
    def times_ms(self) -> npt.NDArray[np.int64]:
        return self.start_ms + np.arange(self.hours, dtype=np.int64) * HOUR_MS

    def off_hours(self) -> npt.NDArray[np.bool_]:
        """Hours the ordinary week does not describe (holidays, make-up workdays): the
        occupancy-driven channels do not judge them and their hour-of-week fits leave them out."""
        if self.calendar is None:
            return np.zeros(self.hours, dtype=bool)
        return self.calendar.off_hours(self.times_ms)

    def has(self, metric: str) -> bool:
        return metric in self.avg

    def column(self, metric: str, agg: str = "avg") -> Array:
        """The column, or all-NaN when the device never reported the metric."""
        table = {"avg": self.avg, "min": self.min, "max": self.max}[agg]
        found = table.get(metric)
        if found is None:
            return np.full(self.hours, np.nan)
        return found

    def hour_of(self, time_ms: int) -> int:
        return (time_ms - self.start_ms) // HOUR_MS

    def window(self, start_ms: int, end_ms: int) -> HourlyFrame:
        """The hours in ``[start_ms, end_ms)`` (clipped to the frame) as a new frame (views, no copy)."""
        lo = max(0, self.hour_of(max(start_ms, self.start_ms)))
        hi = min(self.hours, max(lo, -(-(end_ms - self.start_ms) // HOUR_MS)))
        return HourlyFrame(
            device=self.device,
            kind=self.kind,
            start_ms=self.start_ms + lo * HOUR_MS,
            hours=hi - lo,
            avg={k: v[lo:hi] for k, v in self.avg.items()},
            min={k: v[lo:hi] for k, v in self.min.items()},
            max={k: v[lo:hi] for k, v in self.max.items()},
            community=self.community,
            calendar=self.calendar,
        )


def from_rollup_rows(
    device: str,
    kind: str,
    rows: Iterable[tuple[int, str, float | None, float | None, float | None]],
    *,
    start_ms: int,
    end_ms: int,
    community: str = "",
    calendar: DayCalendar | None = None,
) -> HourlyFrame:
    """Build a frame from ``(bucket_ms, metric, avg, min, max)`` rows of ``telemetry_1h``."""
    start_ms -= start_ms % HOUR_MS
    hours = max(0, -(-(end_ms - start_ms) // HOUR_MS))
    frame = HourlyFrame(device=device, kind=kind, start_ms=start_ms, hours=hours, community=community,
                        calendar=calendar)
    for bucket_ms, metric, avg, lo, hi in rows:
        index = (bucket_ms - start_ms) // HOUR_MS
        if not 0 <= index < hours:
            continue
        for table, value in ((frame.avg, avg), (frame.min, lo), (frame.max, hi)):
            column = table.get(metric)
            if column is None:
                column = table[metric] = np.full(hours, np.nan)
            column[index] = np.nan if value is None else value
    return frame


def counter_increase(frame: HourlyFrame, metric: str) -> Array:
    """Per-hour increase of a monotonically increasing counter (trips, starts, kWh …).

    Uses the hourly maximum (the newest reading in a monotonic hour), so an increase that spans
    an hour boundary is counted in the later hour and nothing is counted twice; the increase over
    a gap of missing hours is not counted at all (it belongs to no hour we have). A counter that
    goes backwards (device replaced, register reset) counts as 0 for that hour rather than as a
    huge negative step.
    """
    top = frame.column(metric, "max")
    if not frame.hours:
        return top.copy()
    diff = np.diff(top, prepend=np.nan)
    # the first hour with data and every hour after a gap (missing hours, or hours a caller masked):
    # only its own within-hour increase. Carrying the gap's whole increase into that one hour made
    # a spike of several hours' energy or trips — a false "excess", and in a training window a
    # seasonal slot learnt several times too high (issue 15: missing hours are ordinary)
    after_gap = np.isnan(diff) & ~np.isnan(top)
    diff[after_gap] = (top - frame.column(metric, "min"))[after_gap]
    diff[np.isnan(top)] = np.nan
    diff[diff < 0] = 0.0
    return diff


def occupancy(frame: HourlyFrame, values: Array, *, holidays: bool = True) -> Array:
    """``values`` with the frame's off hours (holidays, make-up workdays) set to NaN: an
    occupancy-driven series (passages, trips, energy, flow, duty) is neither judged nor learnt
    there — its EWMA holds its state across the holiday, its trailing sums wait for enough
    ordinary hours, and the hour-of-week fit does not learn an empty building as a normal week.

    ``holidays=False`` masks the make-up workdays only: for the channels that look for *more*
    than normal (energy excess, flow and night duty of a leak). A holiday lowers occupancy, so
    an excess over the ordinary week's normal on a holiday is an excess all the more — judging it
    costs sensitivity, never a false alarm, and a leak or a drift that starts in the Spring
    Festival is not left unseen for nine days (without it the evaluation's negative leads on
    energy drift doubled: the drift crossed its 15 % band while the channel was blind). What
    this assumes: holidays *empty* the building. An estate whose residents come home for the
    holiday takes those days back as workdays, or adds them as its own — see the docs."""
    if frame.calendar is None:
        return values
    types = frame.calendar.hour_types(frame.times_ms)
    off = types != DayType.ordinary if holidays else types == DayType.makeup
    if not off.any():
        return values
    return np.where(off, np.nan, values)


def span(frame: HourlyFrame, start_ms: int, end_ms: int) -> HourlyFrame:
    """The hours ``[start_ms, end_ms)`` as a frame that starts exactly at ``start_ms`` (NaN where
    ``frame`` has no hours) — what :func:`from_rollup_rows` gives for the same range, so scoring on
    an in-memory frame (evaluation, tests) sees what it would see in the database."""
    if start_ms % HOUR_MS or end_ms % HOUR_MS:
        raise ValueError("span bounds must be aligned to an hour")
    hours = max(0, (end_ms - start_ms) // HOUR_MS)
    out = HourlyFrame(device=frame.device, kind=frame.kind, start_ms=start_ms, hours=hours, community=frame.community,
                      calendar=frame.calendar)
    lo = max(start_ms, frame.start_ms)
    hi = min(end_ms, frame.start_ms + frame.hours * HOUR_MS)
    src = slice(frame.hour_of(lo), frame.hour_of(hi)) if hi > lo else slice(0, 0)
    dst = slice((lo - start_ms) // HOUR_MS, (hi - start_ms) // HOUR_MS) if hi > lo else slice(0, 0)
    for source, target in ((frame.avg, out.avg), (frame.min, out.min), (frame.max, out.max)):
        for metric, column in source.items():
            values = np.full(hours, np.nan)
            values[dst] = column[src]
            target[metric] = values
    return out


def mask_hours(frame: HourlyFrame, ranges: Iterable[tuple[int, int]]) -> HourlyFrame:
    """A copy of ``frame`` with the hours overlapping any ``[from_ms, to_ms)`` set to NaN (hours a
    fault or a repair was going on: a baseline fitted on them would learn the fault)."""
    drop = np.zeros(frame.hours, dtype=bool)
    for lo, hi in ranges:
        first = max(0, (lo - frame.start_ms) // HOUR_MS)
        last = min(frame.hours, -(-(hi - frame.start_ms) // HOUR_MS))
        if last > first:
            drop[first:last] = True
    out = HourlyFrame(device=frame.device, kind=frame.kind, start_ms=frame.start_ms, hours=frame.hours,
                      community=frame.community, calendar=frame.calendar)
    for source, target in ((frame.avg, out.avg), (frame.min, out.min), (frame.max, out.max)):
        for metric, column in source.items():
            target[metric] = np.where(drop, np.nan, column)
    return out
