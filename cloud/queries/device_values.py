"""The device's current values as an engineer reads them: grouped, labelled, with units and words.

One read model for ``GET /api/v1/devices/{id}/values``, the device page, its live updates (SSE)
and its chart picker, so all four say the same thing. The device's profile (the registry's
``profile_id``, else the shipped default of its kind: :func:`device_profiles.display.profile_for`)
gives each metric its label, group, unit, precision and the words of enum codes and bits; a
metric the profile does not know is still shown, under "other", with its key as label.

Counters carry their increase over the last 24 hours and 30 days, computed from the hourly
rollup by :func:`counter_increases`, which is robust to a counter reset (see there).
"""

from __future__ import annotations

import datetime as dt
import math
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel, Field

from cloud.db.rollups import floor_to
from cloud.queries.telemetry import last_values_since
from device_profiles.display import (
    GROUP_LABELS,
    GROUP_ORDER,
    ValueKind,
    format_value,
    label_of,
    profile_for,
    set_flags,
    state_labels,
    unit_of,
    value_kind,
)
from device_profiles.model import Point, Profile, Text

DEFAULT_TZ = "Asia/Shanghai"


class PointDisplay(BaseModel):
    """How one metric of this device is shown (the chart picker and the chart use it too)."""

    metric: str
    label: Text
    group: str
    kind: ValueKind = Field(description="number: a line; state: enum/bool drawn as bands; flags: bitfield; text")
    unit: str | None
    precision: int
    counter: bool
    states: dict[int, Text] = Field(default_factory=dict, description="words of the codes of a state")


class ShownValue(BaseModel):
    display: PointDisplay
    value: float | str | None = Field(description="the stored value (a code for enums, the raw word for bitfields)")
    text: Text = Field(description="the value as people read it, unit included")
    flags: list[Text] | None = Field(None, description="set flags of a bitfield")
    at: dt.datetime
    increase_24h: float | None = None
    increase_30d: float | None = None


class ValueGroup(BaseModel):
    group: str
    label: Text
    values: list[ShownValue]


class DeviceValues(BaseModel):
    device_id: int
    profile: str | None
    timezone: str = Field(description="the community's IANA time zone; pages show times in it")
    groups: list[ValueGroup]


def display_of(profile: Profile | None, metric: str) -> PointDisplay:
    point: Point | None = None
    if profile is not None:
        try:
            point = profile.point(metric)
        except KeyError:
            point = None
    if point is None:
        return PointDisplay(metric=metric, label=Text(zh=metric, en=metric), group="other", kind="number", unit=None,
                            precision=2, counter=False)
    kind = value_kind(point)
    return PointDisplay(metric=metric, label=label_of(point), group=point.group or "other", kind=kind,
                        unit=unit_of(point), precision=point.precision or 0, counter=point.counter,
                        states=state_labels(point) if kind == "state" else {})


def shown(profile: Profile | None, metric: str, value: float | str | None, at: dt.datetime) -> ShownValue:
    """One value with its display (also what the live stream sends)."""
    display = display_of(profile, metric)
    point = next((p for p in profile.points if p.name == metric), None) if profile else None
    if point is None:
        text = "—" if value is None else (f"{value:,.2f}" if isinstance(value, float | int) else str(value))
        return ShownValue(display=display, value=value, text=Text(zh=text, en=text), at=at)
    flags = None
    if display.kind == "flags" and isinstance(value, int | float) and math.isfinite(value):
        flags = set_flags(point, round(value))
    return ShownValue(display=display, value=value, text=format_value(point, value), flags=flags, at=at)


_INCREASE = """
WITH b AS (
    SELECT m.name, h.bucket, h.min_value, h.max_value,
           lag(h.max_value) OVER (PARTITION BY m.name ORDER BY h.bucket) AS prev
      FROM telemetry_1h h JOIN metrics m ON m.id = h.metric_id
     WHERE h.device_id = %(dev)s AND m.name = ANY(%(names)s) AND h.bucket >= %(since)s AND h.bucket < %(now)s
)
SELECT name,
       sum(CASE WHEN prev IS NOT NULL AND min_value >= prev THEN max_value - prev
                ELSE max_value - min_value END) FILTER (WHERE bucket >= %(d1)s),
       sum(CASE WHEN prev IS NOT NULL AND min_value >= prev THEN max_value - prev
                ELSE max_value - min_value END)
  FROM b GROUP BY name
"""


async def counter_increases(conn: AsyncConnection[Any], device_id: int, names: list[str],
                            now: dt.datetime) -> dict[str, tuple[float | None, float | None]]:
    """``{counter: (increase over 24 h, over 30 days)}`` from the hourly rollup.

    A counter only grows, so the increase is the sum of its positive steps; a drop is a reset
    (a replaced board, a power loss that cleared the register, a 32-bit wrap). Per hourly bucket:
    when its lowest value is not below the previous bucket's highest, the bucket added
    ``max - previous max``; when it is below, the counter was reset inside the bucket and it added
    at least ``max - min`` (it restarted near zero and climbed). The first bucket of the window
    adds its own ``max - min``. "24 hours" is the 24 hourly buckets before the current one plus the
    current one (hours are the rollup's grain). ``max - min`` over the whole window, which this replaces, reads a
    reset as a huge increase or, the other way round, hides the growth after it.
    """
    if not names:
        return {}
    hour = floor_to(now, dt.timedelta(hours=1))
    cur = await conn.execute(_INCREASE, {"dev": device_id, "names": names, "now": now,
                                         "since": hour - dt.timedelta(days=30), "d1": hour - dt.timedelta(days=1)})
    return {r[0]: (r[1], r[2]) for r in await cur.fetchall()}


async def device_context(conn: AsyncConnection[Any], device_id: int) -> tuple[Profile | None, str]:
    """The device's profile and its community's time zone."""
    cur = await conn.execute(
        "SELECT d.profile_id, d.kind, c.timezone FROM devices d JOIN communities c ON c.id = d.community_id"
        " WHERE d.id = %s", (device_id,))
    row = await cur.fetchone()
    if row is None:
        return None, DEFAULT_TZ
    return profile_for(row[0], row[1]), row[2] or DEFAULT_TZ


async def load_device_values(conn: AsyncConnection[Any], device_id: int, now: dt.datetime) -> DeviceValues:
    """The grouped values of a device the caller may see (the caller checks the tenant first)."""
    profile, tz = await device_context(conn, device_id)
    rows = await last_values_since(conn, device_id, dt.datetime(1970, 1, 1, tzinfo=dt.UTC))
    values = [shown(profile, r.metric, r.value if r.value is not None else r.value_text, r.time) for r in rows]
    counters = [v.display.metric for v in values if v.display.counter]
    increases = await counter_increases(conn, device_id, counters, now)
    for v in values:
        if v.display.metric in increases:
            v.increase_24h, v.increase_30d = increases[v.display.metric]
    order = {name: i for i, name in enumerate(profile.point_names)} if profile else {}
    groups = []
    for group in GROUP_ORDER:
        members = sorted((v for v in values if v.display.group == group),
                         key=lambda v: (order.get(v.display.metric, len(order)), v.display.metric))
        if members:
            groups.append(ValueGroup(group=group, label=GROUP_LABELS[group], values=members))
    return DeviceValues(device_id=device_id, profile=profile.id if profile else None, timezone=tz, groups=groups)


def chart_metrics(values: DeviceValues) -> list[PointDisplay]:
    """What the chart can draw (numbers as lines, states as bands), in page order."""
    return [v.display for g in values.groups for v in g.values
            if v.display.kind in ("number", "state") and isinstance(v.value, int | float)]
