"""The report's charts as data: one list of bar charts, drawn by the PDF (:mod:`cloud.ops.reports.pdf`,
vector rectangles) and by the report page (inline SVG) alike, so the page and the PDF can never
show different charts of the same report.

Why bars only: every figure of the manager's report is a count, a ratio or an amount per
category (origin, template, route, kind, building, community) — a bar per category reads at a
glance on a phone and on paper, and needs no plotting library.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_BARS = 30


@dataclass(frozen=True, slots=True)
class Chart:
    key: str
    title_zh: str
    title_en: str
    unit: str
    bars: list[tuple[str, float]]

    @property
    def top(self) -> float:
        return max((v for _, v in self.bars), default=0.0) or 1.0


def _num(value: Any) -> float:
    return float(value) if value is not None else 0.0


def charts(report: dict[str, Any]) -> list[Chart]:
    """The charts of a community or company report; a chart without data is left out."""
    company = report.get("scope") == "company"
    sla = report["sla"]
    energy_rows = report["energy"] if company else report["energy_buildings"]
    energy_label = "community" if company else "building"
    found = [
        Chart("work_orders", "工单（来源·优先级）", "work orders by source and priority", "",
              [(f"{w['origin']} {w['priority']}", _num(w["opened"])) for w in report["work_orders"]]),
        Chart("sla", "服务水平达标率", "SLA compliance", "%",
              [(name, round(100 * _num(sla[key]), 1)) for key, name in
               (("respond_ratio", "响应 respond"), ("on_site_ratio", "到场 on site"),
                ("resolve_ratio", "解决 resolve")) if sla[key] is not None]),
        Chart("mtta", "平均响应/解决时长", "MTTA / MTTR", "min",
              [(name, _num(sla[key])) for key, name in (("mtta_min", "MTTA"), ("mttr_min", "MTTR"))
               if sla[key] is not None]),
        Chart("complaints", "投诉（等级）", "complaints by grade", "",
              [(c["grade"], _num(c["received"])) for c in report["complaints"]]),
        Chart("maintenance", "计划维保完成", "planned maintenance done on time", "",
              [(m["template"], _num(m["on_time"])) for m in report["maintenance"]]),
        Chart("inspections", "巡检覆盖率", "inspection coverage", "%",
              [(str(i.get("community") or f"{i['day'][5:]} {i['route']}"), round(100 * _num(i["ratio"]), 1))
               for i in report["inspections"] if i["ratio"] is not None]),
        Chart("availability", "设备可用率", "device availability", "%",
              [(a["kind"], round(100 * _num(a["availability"]), 2)) for a in report["availability"]
               if a["availability"] is not None]),
        Chart("faults", "设备故障次数", "device faults", "",
              [(a["kind"], _num(a["faults"])) for a in report["availability"]]),
        Chart("energy_kwh", "能耗", "energy", "kWh",
              [(str(e[energy_label]), _num(e["kwh"])) for e in energy_rows]),
        Chart("energy_cost", "电费", "energy cost", "CNY",
              [(str(e[energy_label]), _num(e["cost"])) for e in energy_rows]),
    ]
    return [Chart(c.key, c.title_zh, c.title_en, c.unit, c.bars[:MAX_BARS]) for c in found if c.bars]
