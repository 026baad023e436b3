"""Data for the manager-report tests: hourly energy as the rollup stores it, and a meter baseline
as analytics stores it — written straight to the tables the report reads."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from cloud.analytics import modelstore


async def hourly_energy(conn: psycopg.AsyncConnection[Any], device_id: int, start: datetime, hours: int,
                        kwh: float = 1.0) -> None:
    """``kwh`` every hour from ``start``: the ``energy_total`` counter's hourly rollup rows."""
    cur = await conn.execute("INSERT INTO metrics (name, unit) VALUES ('energy_total', 'kWh') "
                             "ON CONFLICT (name) DO UPDATE SET unit = EXCLUDED.unit RETURNING id")
    metric = (await cur.fetchone() or (0,))[0]
    for h in range(hours):
        top = 100.0 + (h + 1) * kwh
        await conn.execute("INSERT INTO telemetry_1h (bucket, device_id, metric_id, avg_value, min_value, max_value, n)"
                           " VALUES (%s, %s, %s, %s, %s, %s, 4)",
                           (start + timedelta(hours=h), device_id, metric, top - kwh / 2, top - kwh, top))


async def meter_baseline(conn: psycopg.AsyncConnection[Any], device_id: int, kwh_per_hour: float,
                         window_end: datetime) -> None:
    """A meter baseline of ``kwh_per_hour`` in every weekday × hour slot (one new model version)."""
    window = (window_end - timedelta(days=14), window_end)
    model = await modelstore.save_model(conn, detector="meter", kind="meter", params={}, window=window)
    await modelstore.save_baseline(conn, model.id, device_id, {"hour_of_week_kwh": [kwh_per_hour] * 168}, window)


def slot_of(start: datetime, zone: ZoneInfo) -> int:
    """The local hour-of-week slot (Monday 00:00 = 0) of an hour starting at ``start``."""
    local = start.astimezone(zone)
    return local.weekday() * 24 + local.hour


def slot_rows(hours: Iterable[tuple[str, str | None, datetime, float]], zone: ZoneInfo) -> list[dict[str, Any]]:
    """Hourly kWh (device, building, hour start, kWh) as the rows of ``repo.energy_slots``."""
    acc: dict[tuple[str, str | None, int], list[Decimal]] = defaultdict(list)
    for device, building, start, kwh in hours:
        acc[(device, building, slot_of(start, zone))].append(Decimal(repr(kwh)))
    return [{"device": d, "building": b, "slot": s, "kwh": sum(v, Decimal(0)), "hours": len(v)}
            for (d, b, s), v in sorted(acc.items(), key=lambda kv: (kv[0][0], kv[0][2]))]
