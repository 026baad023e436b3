"""The slots of a route, pure: a route every N hours (N divides 24) has slots starting at local
midnight + k·N h in the community's time zone — "twice a day" is 00:00–12:00 and 12:00–24:00,
"every 4 h in key areas" six slots a day. Slots are computed, never stored, so a changed
frequency applies from the next slot on and nothing has to be generated ahead of time.

Local days are not always 24 h long elsewhere (DST); slot boundaries are computed as local wall
times and converted, so a 23-hour day has a short slot rather than a slot straddling two days.
Chinese communities have no DST, but the zone is the community's setting.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def _at(day: date, hour: int, zone: ZoneInfo) -> datetime:
    if hour >= 24:
        return _at(day + timedelta(days=hour // 24), hour % 24, zone)
    return datetime.combine(day, time(hour), tzinfo=zone).astimezone(UTC)


def slot_at(when: datetime, every_hours: int, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The slot (start, end) containing ``when``."""
    local = when.astimezone(zone)
    first = (local.hour // every_hours) * every_hours
    return _at(local.date(), first, zone), _at(local.date(), first + every_hours, zone)


def last_closed(now: datetime, every_hours: int, grace: timedelta, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """The latest slot whose end + ``grace`` is not after ``now`` (the one a missed scan is judged on)."""
    start, _ = slot_at(now - grace, every_hours, zone)
    return slot_at(start - timedelta(seconds=1), every_hours, zone)


def slots_of_day(day: date, every_hours: int, zone: ZoneInfo) -> list[tuple[datetime, datetime]]:
    return [(_at(day, h, zone), _at(day, h + every_hours, zone)) for h in range(0, 24, every_hours)]
