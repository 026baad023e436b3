"""Energy targets (能耗指标): kWh per community or building for a period kind, from a local date on
(table ``energy_targets``, migration 410).

Which target a report uses, decided here once: for a period of kind K starting on day F, the
newest target of kind K with ``valid_from <= F`` — so changing a target from next month on never
rewrites this month's report. A day or week without a target of its own gets the month's pro
rata by days: each day of the period counts 1/(days of its month) of the target of *its* month
(as that month's report would pick it), so a week across a month end is split correctly and a
day's target × the days of a month adds up to the month's. Exact decimals, 0.001 kWh.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

KWH = Decimal("0.001")
Period = Literal["day", "week", "month"]


@dataclass(frozen=True, slots=True)
class Target:
    community: str
    building: str | None
    period: str
    kwh: Decimal
    valid_from: date


def _newest(targets: Iterable[Target], building: str | None, period: str, on: date) -> Target | None:
    found = [t for t in targets if t.building == building and t.period == period and t.valid_from <= on]
    return max(found, key=lambda t: t.valid_from, default=None)


def _month_days(day: date) -> int:
    first = day.replace(day=1)
    return ((first + timedelta(days=32)).replace(day=1) - first).days


def resolve(targets: Iterable[Target], period: Period, first: date, after: date) -> dict[str | None, Decimal]:
    """kWh target per building code (None: the community) for the period ``[first, after)``."""
    rows = list(targets)
    out: dict[str | None, Decimal] = {}
    for building in {t.building for t in rows}:
        own = _newest(rows, building, period, first)
        if own is not None:
            out[building] = own.kwh
            continue
        if period == "month":
            continue
        total, day, complete = Decimal(0), first, True
        while day < after:
            month = _newest(rows, building, "month", day.replace(day=1))
            if month is None:
                complete = False
                break
            total += month.kwh / _month_days(day)
            day += timedelta(days=1)
        if complete:
            out[building] = total.quantize(KWH, ROUND_HALF_UP)
    return out
