"""Time as a dependency: wall time enters the program here and nowhere else.

Every business function takes ``now`` from a :class:`Clock`; the database never decides the time
of a business event (no ``now()`` in those statements), so a test can move time forward by an
hour and watch escalation happen. The module lives in the shared core (not in a tier) because the
cloud, the CLI and the edge all need the same protocol and the same epoch-ms conversions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time, timezone-aware UTC."""

    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 2, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta) -> datetime:
        self._now += delta
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def to_ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)
