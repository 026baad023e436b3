"""Duty rosters: weekly shifts in the butler's own time zone.

A shift is (weekday, start, end) in local time; an end at or before the start runs past midnight
into the next day. A butler with no shifts is treated as always on duty (small communities run
without rosters), which the routing score then treats like anyone else.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cloud.ops.model.errors import InvalidRequest


@dataclass(frozen=True, slots=True)
class Shift:
    weekday: int  # 0 = Monday, local time
    starts: time
    ends: time

    def covers(self, local: datetime) -> bool:
        clock = local.time().replace(tzinfo=None)
        day = local.weekday()
        if self.starts < self.ends:
            return day == self.weekday and self.starts <= clock < self.ends
        # over midnight: the evening part on `weekday`, the morning part on the next day
        if day == self.weekday and clock >= self.starts:
            return True
        return day == (self.weekday + 1) % 7 and clock < self.ends


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequest(f"unknown time zone {name!r}") from exc


def on_duty(shifts: list[Shift], tz: str, at: datetime) -> bool:
    """Whether a butler with ``shifts`` (in zone ``tz``) is on duty at the aware instant ``at``."""
    if not shifts:
        return True
    local = at.astimezone(zone(tz))
    return any(s.covers(local) for s in shifts)


def week(starts: time, ends: time, days: range = range(7)) -> list[Shift]:
    """Helper for seeds and tests: the same shift every day in ``days``."""
    return [Shift(d, starts, ends) for d in days]


def next_shift_start(shifts: list[Shift], tz: str, at: datetime) -> datetime | None:
    """When the butler next comes on duty (for messages like "on duty from 08:00")."""
    if not shifts:
        return at
    local = at.astimezone(zone(tz))
    best: datetime | None = None
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        for s in shifts:
            if s.weekday != day.weekday():
                continue
            start = datetime.combine(day, s.starts, tzinfo=local.tzinfo)
            if start > local and (best is None or start < best):
                best = start
    return best
