"""Which days a community's building is not on its ordinary week: statutory holidays and 调休.

Why the detectors need it (issue 15): the occupancy-driven channels (gate passages, lift trips,
meter energy, pump flow and night duty) compare an hour with the same hour of the week in the
device's training window. In the Spring Festival the residents travel and the building empties;
every hour-of-week normal is wrong for nine days, and a baseline retrained over the holiday
expects too little afterwards. On the product-path evaluation that was 0.31 false alarms per
fault-free device-week against 0.04 without the holidays.

Where the days come from: the ``holidays`` library (Open World Holidays Framework), whose China
table follows the State Council's yearly notice (国务院办公厅关于部分节假日安排的通知) — the
statutory days, the substituted days off ("休息日（由 … 调休）") and the make-up working days
(``weekend_workdays``: a Saturday or Sunday that is a working day). A kept library rather than our
own table: the notice changes every year and the library is updated with it. What the library
does not say in one word is the *block* a resident lives: 15–23 Feb 2026 is 9 days off, but the
library lists 16–20 and 23 Feb as holidays and leaves the weekend days 15, 21 and 22 to the
ordinary week. So a **holiday** here is every day of a run of non-working days (by the library's
``is_working_day``, which knows the make-up days) that contains at least one statutory holiday:
15–23 Feb, 1–7 Oct, 25–27 Sep 2026 (Mid-Autumn). A **make-up workday** is a weekend day the
notice made a working day (14 and 28 Feb 2026): the hour-of-week normal expects a weekend there.

A community adds its own days (a closure, a local festival: ``holiday``) or takes a statutory day
back (``workday``: e.g. a community of retirees that does not empty) — table
``community_calendar_days`` (migration 650), edited by an admin through the API.

Day types are decided in the community's **local** time (``Asia/Shanghai`` by default): the
hour 16:00–17:00 UTC on 14 Feb 2026 is already 15 Feb, the first day of the holiday, in Beijing.

The calendar is an *input* of scoring (it travels with the :class:`~cloud.analytics.frames.HourlyFrame`),
never a global: the timeline stays a pure function of data, model, calendar and grid.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from cloud.analytics.errors import AnalyticsError

DEFAULT_ZONE = "Asia/Shanghai"


class CalendarError(AnalyticsError):
    """A calendar that cannot be built (unknown time zone, a bad day kind)."""


class DayType(IntEnum):
    """What a day is for the building's occupancy."""

    ordinary = 0
    """The ordinary week decides (a weekday or a weekend)."""
    holiday = 1
    """A statutory holiday block, or a community's own closure day: the building empties."""
    makeup = 2
    """A weekend day made a working day (调休): no hour-of-week normal fits it."""


OWN_KINDS = ("holiday", "workday")
"""A community's own days: ``holiday`` adds a day off, ``workday`` takes a statutory one back."""


@lru_cache(maxsize=64)
def statutory(year: int) -> tuple[frozenset[dt.date], frozenset[dt.date]]:
    """China's holiday blocks and make-up workdays of ``year`` from the ``holidays`` library.

    A year the State Council has not published yet has the fixed-date holidays only (the library
    knows no substitutions for it); the blocks are then shorter than they will be.
    """
    from holidays import country_holidays

    table = country_holidays("CN", years=(year - 1, year, year + 1))
    makeup = frozenset(d for d in table.weekend_workdays if d.year == year)
    days: set[dt.date] = set()
    for named in table:
        if named.year != year or named in days:
            continue
        # grow the block over the adjacent non-working days (the weekends the notice wraps in)
        lo = hi = named
        while not table.is_working_day(lo - dt.timedelta(days=1)):
            lo -= dt.timedelta(days=1)
        while not table.is_working_day(hi + dt.timedelta(days=1)):
            hi += dt.timedelta(days=1)
        days.update(lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1))
    return frozenset(d for d in days if d.year == year), makeup


@lru_cache(maxsize=16)
def names(year: int) -> dict[dt.date, tuple[str, str]]:
    """The library's names of ``year``'s statutory days, Chinese and English (the weekend days a
    block wraps in have none)."""
    from holidays import country_holidays

    zh = country_holidays("CN", years=year, language="zh_CN")
    en = country_holidays("CN", years=year, language="en_US")
    return {day: (zh.get(day) or "", en.get(day) or "") for day in sorted(set(zh) | set(en))}


@dataclass(frozen=True, slots=True)
class DayCalendar:
    """The day type of every day for one community: statutory days of the years it covers plus
    the community's own (``own``: day → ``holiday`` | ``workday``), in its time zone."""

    zone: str = DEFAULT_ZONE
    own: Mapping[dt.date, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.zone)
        except (KeyError, ValueError) as exc:  # ZoneInfoNotFoundError is a KeyError
            raise CalendarError(f"unknown time zone {self.zone!r}") from exc
        for day, kind in self.own.items():
            if kind not in OWN_KINDS:
                raise CalendarError(f"{day}: day kind must be one of {OWN_KINDS}, not {kind!r}")

    def day_type(self, day: dt.date) -> DayType:
        kind = self.own.get(day)
        if kind == "holiday":
            return DayType.holiday
        holidays, makeup = statutory(day.year)
        if kind == "workday":
            # taken back: an ordinary day for this community (a make-up Saturday stays a Saturday)
            return DayType.ordinary
        if day in holidays:
            return DayType.holiday
        if day in makeup:
            return DayType.makeup
        return DayType.ordinary

    def local_date(self, time_ms: int) -> dt.date:
        return dt.datetime.fromtimestamp(time_ms / 1000, ZoneInfo(self.zone)).date()

    def hour_types(self, times_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.int8]:
        """:class:`DayType` of each hour (its start), by the local date of that hour."""
        out = np.zeros(times_ms.shape, dtype=np.int8)
        if not times_ms.size:
            return out
        zone = ZoneInfo(self.zone)
        # one look-up per local day, not per hour: the offset of a day's hours is the zone's at
        # that moment (China keeps one offset; a zone with DST is handled per hour boundary)
        first = dt.datetime.fromtimestamp(int(times_ms.min()) / 1000, zone).date() - dt.timedelta(days=1)
        last = dt.datetime.fromtimestamp(int(times_ms.max()) / 1000, zone).date() + dt.timedelta(days=1)
        day = first
        while day <= last:
            kind = self.day_type(day)
            if kind is not DayType.ordinary:
                start = dt.datetime.combine(day, dt.time(), zone)
                lo = int(start.timestamp() * 1000)
                hi = int((start + dt.timedelta(days=1)).timestamp() * 1000)
                out[(times_ms >= lo) & (times_ms < hi)] = int(kind)
            day += dt.timedelta(days=1)
        return out

    def off_hours(self, times_ms: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
        """Hours the ordinary week does not describe (holidays and make-up workdays): the
        occupancy channels do not judge them and the hour-of-week fits leave them out."""
        return np.asarray(self.hour_types(times_ms) != DayType.ordinary, dtype=bool)

    def days(self, year: int) -> list[tuple[dt.date, DayType, str]]:
        """Every day of ``year`` that is not ordinary, with where it comes from (``statutory`` or
        ``community``), plus the statutory days the community took back (as ordinary)."""
        holidays, makeup = statutory(year)
        found: dict[dt.date, tuple[DayType, str]] = dict.fromkeys(holidays, (DayType.holiday, "statutory"))
        found.update(dict.fromkeys(makeup, (DayType.makeup, "statutory")))
        for day, kind in self.own.items():
            if day.year == year:
                found[day] = (DayType.holiday if kind == "holiday" else DayType.ordinary, "community")
        return sorted((d, t, s) for d, (t, s) in found.items())


def spans(calendar: DayCalendar, start_ms: int, end_ms: int, kind: DayType = DayType.holiday) -> list[tuple[int, int]]:
    """``[from, to)`` ms of the runs of ``kind`` days in ``[start_ms, end_ms)`` (whole local days,
    clipped to the range) — the evaluation's holiday weeks are these."""
    hours = np.arange(start_ms, end_ms, 3_600_000, dtype=np.int64)
    hit = calendar.hour_types(hours) == int(kind)
    out: list[tuple[int, int]] = []
    run_start: int | None = None
    for at, flag in zip(hours.tolist(), hit.tolist(), strict=True):
        if flag and run_start is None:
            run_start = at
        elif not flag and run_start is not None:
            out.append((run_start, at))
            run_start = None
    if run_start is not None:
        out.append((run_start, end_ms))
    return out


def calendar_of(zone: str | None, own: Iterable[tuple[dt.date, str]] = ()) -> DayCalendar:
    """A community's calendar from its stored zone and own days."""
    return DayCalendar(zone or DEFAULT_ZONE, dict(own))
