"""The manager's report of one community for a day, a week (Monday–Sunday) or a month, in the
community's time zone: work orders (by origin and priority, SLA compliance, MTTA/MTTR), planned
maintenance (due, on time, late, not done), inspection coverage, device availability and faults,
and energy per meter and building with its time-of-use cost, baseline, savings and target
(:mod:`cloud.ops.reports.energy`). The company report is built from these
(:mod:`cloud.ops.reports.company`).

Reproducible: a period that has ended gives the same report whenever it is generated — every
figure is computed from events stamped before the period's end (see :mod:`cloud.ops.reports.repo`),
inspection coverage is judged as at the period's end, energy targets and baselines are those valid
at its start, and ``generated_at`` is the only field that changes. A period not yet over is marked ``final: false``.

Every table is also a list of flat rows (:func:`tables`), which is what the CSV export writes.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from cloud.ops.inspections.rounds import coverage
from cloud.ops.maintenance.contracts import compliance
from cloud.ops.model.errors import InvalidRequest, NotFound
from cloud.ops.reports import repo
from cloud.ops.reports.energy import section
from cloud.ops.reports.targets import resolve
from cloud.ops.reports.tariffs import Tariff

Period = Literal["day", "week", "month"]
TABLES = ("work_orders", "sla", "complaints", "maintenance", "inspections", "availability", "energy",
          "energy_buildings", "energy_total", "contractors")
TABLE_TITLES = {
    "communities": "各小区 / communities", "work_orders": "工单 / work orders by source and priority",
    "sla": "服务水平 / SLA, MTTA, MTTR (min)",
    "complaints": "投诉 / complaints by grade", "maintenance": "计划维保 / planned maintenance",
    "inspections": "巡检覆盖 / inspection coverage", "availability": "设备可用与故障 / availability and faults",
    "energy": "能耗与电费 / energy and cost (TOU)", "energy_buildings": "各楼栋能耗 / energy per building",
    "energy_total": "能耗合计 / energy total", "contractors": "维保单位合同履约 / contractor SLA compliance",
}
COMPANY_TABLES = ("communities", "work_orders", "sla", "complaints", "maintenance", "inspections", "availability",
                  "energy", "contractors")


def bounds(period: Period, day: date, zone: ZoneInfo) -> tuple[date, date, datetime, datetime]:
    """(first day, day after the last, start, end) of the period containing ``day``, local."""
    if period == "day":
        first, after = day, day + timedelta(days=1)
    elif period == "week":
        first = day - timedelta(days=day.weekday())
        after = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)

    def at(d: date) -> datetime:
        return datetime.combine(d, time(0), tzinfo=zone).astimezone(UTC)

    return first, after, at(first), at(after)


def _ratio(ok: int, judged: int) -> float | None:
    return round(ok / judged, 4) if judged else None


async def build(conn: AsyncConnection[Any], community: str, period: Period, day: date, tariff: Tariff,
                now: datetime) -> dict[str, Any]:
    zone_name = await repo.community_zone(conn, community)
    if zone_name is None:
        raise NotFound(f"community {community} is not registered")
    zone = ZoneInfo(zone_name)
    if not date(2000, 1, 1) <= day <= date(2099, 12, 31):
        raise InvalidRequest("start: between 2000-01-01 and 2099-12-31")
    first, after, start, end = bounds(period, day, zone)
    if start > now:
        raise InvalidRequest("start: the period has not begun / 报告期尚未开始")
    stats = await repo.order_stats(conn, community, start, end)
    sla = {"opened": stats.opened, "resolved": stats.resolved, "acknowledged": stats.acknowledged,
           "respond_ratio": _ratio(stats.respond_ok, stats.respond_judged),
           "on_site_ratio": _ratio(stats.on_site_ok, stats.on_site_judged),
           "resolve_ratio": _ratio(stats.resolve_ok, stats.resolve_judged),
           "mtta_min": stats.mtta_min, "mttr_min": stats.mttr_min,
           "respond_ok": stats.respond_ok, "respond_judged": stats.respond_judged,
           "on_site_ok": stats.on_site_ok, "on_site_judged": stats.on_site_judged,
           "resolve_ok": stats.resolve_ok, "resolve_judged": stats.resolve_judged}
    judged_at = min(end, now)
    inspections: list[dict[str, Any]] = []
    d = first
    while d < after and datetime.combine(d, time(0), tzinfo=zone) <= judged_at:
        inspections += [{"day": c.day.isoformat(), "route": c.route, "expected": c.expected, "covered": c.covered,
                         "ratio": c.ratio} for c in await coverage(conn, community, d, judged_at) if c.expected]
        d += timedelta(days=1)
    energy = section(await repo.energy_slots(conn, community, start, judged_at),
                     await repo.meter_profiles(conn, community, start),
                     resolve(await repo.energy_targets(conn, community, after), period, first, after), tariff)
    hours = max((judged_at - start) / timedelta(hours=1), 0.0)
    availability = [{**row, "availability": _availability(row["devices"], row["down_hours"], hours)}
                    for row in await repo.availability_rows(conn, community, start, judged_at)]
    return {
        "scope": "community", "community": community, "period": period, "start": first.isoformat(),
        "end": (after - timedelta(days=1)).isoformat(), "timezone": zone_name, "final": end <= now,
        "generated_at": now.astimezone(zone).isoformat(),
        "work_orders": await repo.order_counts(conn, community, start, end),
        "sla": sla,
        "complaints": await repo.complaint_rows(conn, community, start, end),
        "maintenance": await repo.maintenance_rows(conn, community, start, end),
        "inspections": inspections,
        "availability": availability,
        "energy": energy.meters,
        "energy_buildings": energy.buildings,
        "energy_total": energy.total,
        "contractors": [{"contractor": c.contractor, "skill": c.skill, "on_site_within_min": c.on_site_within_min,
                         "resolve_within_min": c.resolve_within_min, "orders": c.orders,
                         "on_site_ratio": c.on_site_ratio, "resolve_ratio": c.resolve_ratio}
                        for c in await compliance(conn, community, start, end)],
    }


def _availability(devices: int, down_hours: float, hours: float) -> float | None:
    return round(max(0.0, 1 - down_hours / (devices * hours)), 4) if devices and hours else None


def tables(report: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Every table of a community or company report as flat rows (single-row tables as one row)."""
    names = COMPANY_TABLES if report.get("scope") == "company" else TABLES
    return {name: report[name] if isinstance(report[name], list) else [report[name]] for name in names}


def to_csv(rows: list[dict[str, Any]]) -> str:
    """CSV with a header (UTF-8 BOM added by the caller for spreadsheets); empty table: header-less ''."""
    if not rows:
        return ""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\r\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (str(v) if isinstance(v, Decimal) else v) for k, v in row.items()})
    return buf.getvalue()
