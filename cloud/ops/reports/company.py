"""The company-wide report (全公司): every community the caller may see, for the same period, as
one row per community plus totals, and the company's tables summed over its communities.

Each community's period is its own local day/week/month (a company with communities in two time
zones closes each one at its own midnight); the report is built from the communities' reports
(:func:`cloud.ops.reports.manager.build`), so the company's numbers are by construction the sums
of the communities' — and as reproducible. Ratios are recomputed from the summed counts (never an
average of ratios), MTTA/MTTR are weighted by the orders they were measured on, money and kWh are
exact decimal sums.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from cloud.ops.model.errors import NotFound
from cloud.ops.reports import repo
from cloud.ops.reports.energy import Figures
from cloud.ops.reports.manager import Period, build
from cloud.ops.reports.tariffs import Tariff

SLA_COUNTS = ("opened", "resolved", "acknowledged", "respond_ok", "respond_judged", "on_site_ok", "on_site_judged",
              "resolve_ok", "resolve_judged")


def _ratio(ok: int, judged: int) -> float | None:
    return round(ok / judged, 4) if judged else None


def _weighted(pairs: Iterable[tuple[float | None, int]], digits: int = 1) -> float | None:
    known = [(v, n) for v, n in pairs if v is not None and n]
    total = sum(n for _, n in known)
    return round(sum(v * n for v, n in known) / total, digits) if total else None


def _dec(value: str | None) -> Decimal | None:
    return None if value is None else Decimal(value)


def figures_of(total: dict[str, Any]) -> Figures:
    """The summable figures back from a report's ``energy_total`` row (exact: the strings are decimals)."""
    return Figures(int(total["meters"]), Decimal(total["kwh"]), Decimal(total["cost"]), _dec(total["baseline_kwh"]),
                   _dec(total["baseline_cost"]))


def sla_of(slas: Sequence[dict[str, Any]]) -> dict[str, Any]:
    counts = {k: sum(int(s[k]) for s in slas) for k in SLA_COUNTS}
    return {"opened": counts["opened"], "resolved": counts["resolved"], "acknowledged": counts["acknowledged"],
            "respond_ratio": _ratio(counts["respond_ok"], counts["respond_judged"]),
            "on_site_ratio": _ratio(counts["on_site_ok"], counts["on_site_judged"]),
            "resolve_ratio": _ratio(counts["resolve_ok"], counts["resolve_judged"]),
            "mtta_min": _weighted((s["mtta_min"], s["acknowledged"]) for s in slas),
            "mttr_min": _weighted((s["mttr_min"], s["resolved"]) for s in slas),
            **{k: counts[k] for k in SLA_COUNTS[3:]}}


def _summed(rows: Iterable[dict[str, Any]], keys: Sequence[str], counts: Sequence[str]) -> list[dict[str, Any]]:
    out: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: dict.fromkeys(counts, 0))
    for row in rows:
        acc = out[tuple(row[k] for k in keys)]
        for c in counts:
            acc[c] += int(row[c])
    return [{**dict(zip(keys, key, strict=True)), **acc} for key, acc in sorted(out.items())]


def _complaints(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Complaints summed per grade; the mean days to close weighted by the complaints closed."""
    counts = ("received", "handled", "handled_in_time", "handle_judged", "closed", "closed_in_time", "close_judged")
    summed = _summed(rows, ("grade",), counts)
    return [{**row, "close_days": _weighted((r["close_days"], r["closed"]) for r in rows if r["grade"] == row["grade"])}
            for row in summed]


def _summary_row(report: dict[str, Any]) -> dict[str, Any]:
    sla, energy = report["sla"], report["energy_total"]
    maintenance = {k: sum(int(m[k]) for m in report["maintenance"]) for k in ("due", "on_time", "not_done")}
    expected = sum(int(i["expected"]) for i in report["inspections"])
    covered = sum(int(i["covered"]) for i in report["inspections"])
    faults = sum(int(a["faults"]) for a in report["availability"])
    return {"community": report["community"], "opened": sla["opened"], "resolved": sla["resolved"],
            "respond_ratio": sla["respond_ratio"], "resolve_ratio": sla["resolve_ratio"],
            "mtta_min": sla["mtta_min"], "mttr_min": sla["mttr_min"],
            "maintenance_due": maintenance["due"], "maintenance_on_time": maintenance["on_time"],
            "maintenance_not_done": maintenance["not_done"],
            "inspection_expected": expected, "inspection_covered": covered,
            "inspection_ratio": _ratio(covered, expected), "faults": faults,
            "complaints": sum(int(c["received"]) for c in report["complaints"]),
            "kwh": energy["kwh"], "cost": energy["cost"], "baseline_kwh": energy["baseline_kwh"],
            "savings_kwh": energy["savings_kwh"], "savings_cost": energy["savings_cost"],
            "target_kwh": energy["target_kwh"], "target_deviation_pct": energy["target_deviation_pct"]}


def combine(reports: Sequence[dict[str, Any]], now: datetime) -> dict[str, Any]:
    """The company report from its communities' reports (same period kind and day)."""
    zones = sorted({r["timezone"] for r in reports})
    targets = [_dec(r["energy_total"]["target_kwh"]) for r in reports if int(r["energy_total"]["meters"])]
    known = [t for t in targets if t is not None]
    total_target = sum(known, Decimal(0)) if known and len(known) == len(targets) else None
    energy = Figures.total([figures_of(r["energy_total"]) for r in reports])
    sla = sla_of([r["sla"] for r in reports])
    rows = [_summary_row(r) for r in reports]
    inspections = [{"community": r["community"], "expected": x["inspection_expected"],
                    "covered": x["inspection_covered"], "ratio": x["inspection_ratio"]} for r, x in zip(reports, rows,
                                                                                                      strict=True)]
    expected = sum(i["expected"] for i in inspections)
    covered = sum(i["covered"] for i in inspections)
    totals = {"community": "合计 / total", "opened": sla["opened"], "resolved": sla["resolved"],
              "respond_ratio": sla["respond_ratio"], "resolve_ratio": sla["resolve_ratio"],
              "mtta_min": sla["mtta_min"], "mttr_min": sla["mttr_min"],
              **{f"maintenance_{k}": sum(int(x[f"maintenance_{k}"]) for x in rows) for k in ("due", "on_time",
                                                                                              "not_done")},
              "inspection_expected": expected, "inspection_covered": covered,
              "inspection_ratio": _ratio(covered, expected), "faults": sum(int(x["faults"]) for x in rows),
              "complaints": sum(int(x["complaints"]) for x in rows)}
    energy_row = energy.row(total_target, with_target=True)
    totals |= {k: energy_row[k] for k in ("kwh", "cost", "baseline_kwh", "savings_kwh", "savings_cost", "target_kwh",
                                           "target_deviation_pct")}
    availability = _summed((a for r in reports for a in r["availability"]), ("kind",), ("devices", "faults"))
    down: dict[str, float] = defaultdict(float)
    for r in reports:
        for a in r["availability"]:
            down[a["kind"]] += float(a["down_hours"])
    share = {a["kind"]: _weighted(((x["availability"], x["devices"]) for r in reports for x in r["availability"]
                                   if x["kind"] == a["kind"]), 4) for a in availability}
    first = reports[0]
    return {
        "scope": "company", "community": None,
        "period": first["period"], "start": first["start"], "end": first["end"],
        "timezone": zones[0] if len(zones) == 1 else "local", "final": all(r["final"] for r in reports),
        "generated_at": now.astimezone(ZoneInfo(first["timezone"])).isoformat(),
        "communities": [*rows, totals], "totals": totals,
        "work_orders": _summed((w for r in reports for w in r["work_orders"]), ("origin", "priority"), ("opened",)),
        "sla": sla,
        "complaints": _complaints([c for r in reports for c in r["complaints"]]),
        "maintenance": _summed((m for r in reports for m in r["maintenance"]), ("template",),
                               ("due", "on_time", "late", "not_done")),
        "inspections": inspections,
        "availability": [{**a, "down_hours": round(down[a["kind"]], 2),
                          "availability": share[a["kind"]]}
                         for a in availability],
        "energy": [{"community": r["community"], **r["energy_total"]} for r in reports],
        "energy_total": {"meters": energy.meters, **energy_row},
        "contractors": [{"community": r["community"], **c} for r in reports for c in r["contractors"]],
    }


async def build_company(conn: AsyncConnection[Any], visible: list[str] | None, period: Period, day: date,
                        tariff: Tariff, now: datetime) -> dict[str, Any]:
    """``visible``: the caller's communities (None: all, for admins)."""
    codes = await repo.community_codes(conn, visible)
    if not codes:
        raise NotFound("no community to report on / 没有可报告的小区")
    return combine([await build(conn, code, period, day, tariff, now) for code in codes], now)
