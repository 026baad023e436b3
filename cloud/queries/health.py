"""The equipment health record: counters from the latest readings and their recent growth.

What is shown is the device profile's counters (points with ``counter: true``; the table below is
the fallback for a device without a known profile), labelled from the profile. Growth over
24 h / 30 days is the sum of the counter's increases over the hourly rollup, robust to a reset
(:func:`cloud.queries.device_values.counter_increases`).
Energy is also compared with its own baseline (weekly use summed the same reset-proof way): the
last 7 days against the mean of the 4 weeks before (the service levels' ">15 % from normal"
warning threshold is highlighted).

The record is one pydantic model shared by the device page and ``GET /api/v1/devices/{id}/health``
(its response schema): one model per concept, so the page and the API show the same figures. It
is :class:`CounterHealth`, not "HealthRecord", because the analytics' scored record
(:class:`cloud.analytics.health.HealthRecord`, 0–100 with deductions) is a different thing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel, computed_field

from cloud.queries.device_values import counter_increases, device_context, display_of
from device_profiles.model import Text

COUNTERS: dict[str, tuple[str, ...]] = {
    "elevator": ("run_count", "door_cycles", "run_hours"),
    "pump": ("start_count", "run_hours", "energy"),
    "gate": ("passages_in", "passages_out"),
    "meter": ("energy_total", "energy_import"),
}
ALL_COUNTERS = tuple(dict.fromkeys(c for names in COUNTERS.values() for c in names))
ENERGY = ("energy", "energy_total", "energy_import")
BASELINE_WARN = 0.15


class Counter(BaseModel):
    metric: str
    label: Text
    precision: int
    unit: str | None
    total: float | None
    at: dt.datetime | None
    last_24h: float | None
    last_30d: float | None


class EnergyBaseline(BaseModel):
    metric: str
    last_7d: float
    baseline_7d: float

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delta_pct(self) -> float:
        return 100.0 * (self.last_7d - self.baseline_7d) / self.baseline_7d if self.baseline_7d else 0.0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def abnormal(self) -> bool:
        return abs(self.delta_pct) > BASELINE_WARN * 100


class CounterHealth(BaseModel):
    counters: list[Counter]
    energy: EnergyBaseline | None


async def load_health(conn: AsyncConnection[Any], device_id: int, kind: str,
                      now: dt.datetime) -> CounterHealth:
    profile, _tz = await device_context(conn, device_id)
    names = ([p.name for p in profile.points if p.counter] if profile is not None
             else list(COUNTERS.get(kind, ALL_COUNTERS)))
    cur = await conn.execute(
        """SELECT m.name, m.unit, l.value, l.time FROM metrics m
             JOIN telemetry_last l ON l.metric_id = m.id AND l.device_id = %(dev)s
            WHERE m.name = ANY(%(names)s)""", {"dev": device_id, "names": names})
    rows = await cur.fetchall()
    increases = await counter_increases(conn, device_id, [r[0] for r in rows], now)
    found: dict[str, Counter] = {}
    for name, unit, total, at in rows:
        display = display_of(profile, name)
        last_24h, last_30d = increases.get(name, (None, None))
        found[name] = Counter(metric=name, label=display.label, precision=display.precision,
                              unit=display.unit or unit, total=total, at=at, last_24h=last_24h, last_30d=last_30d)
    counters = [found[n] for n in names if n in found]
    energy = None
    for name in ENERGY:
        if name in found:
            energy = await _baseline(conn, device_id, name, now)
            break
    return CounterHealth(counters=counters, energy=energy)


async def _baseline(conn: AsyncConnection[Any], device_id: int, metric: str, now: dt.datetime) -> EnergyBaseline | None:
    cur = await conn.execute(
        """WITH b AS (
               SELECT h.bucket, h.min_value, h.max_value,
                      lag(h.max_value) OVER (ORDER BY h.bucket) AS prev
                 FROM telemetry_1h h JOIN metrics m ON m.id = h.metric_id
                WHERE h.device_id = %(dev)s AND m.name = %(metric)s
                  AND h.bucket >= %(since)s AND h.bucket < %(now)s)
           SELECT floor(extract(epoch FROM %(now)s - bucket) / 604800)::int AS week,
                  sum(CASE WHEN prev IS NOT NULL AND min_value >= prev THEN max_value - prev
                           ELSE max_value - min_value END)
             FROM b GROUP BY 1""",
        {"dev": device_id, "metric": metric, "now": now, "since": now - dt.timedelta(days=35)})
    weeks = {int(r[0]): float(r[1]) for r in await cur.fetchall() if r[1] is not None}
    if 0 not in weeks:
        return None
    previous = [weeks[w] for w in (1, 2, 3, 4) if w in weeks]
    if not previous:
        return None
    return EnergyBaseline(metric=metric, last_7d=weeks[0], baseline_7d=sum(previous) / len(previous))
