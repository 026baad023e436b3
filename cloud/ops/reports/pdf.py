"""The manager's report as a PDF (fpdf2: pure Python, embeds a TrueType subset), with its tables
and a bar chart of energy cost per meter drawn as vector rectangles (no plotting library, no
raster images: the chart stays sharp when printed and the file small).

Chinese needs a CJK font: the first found of :data:`FONT_CANDIDATES` is embedded (subset) — the
project's system dependencies install WenQuanYi Micro Hei (``fonts-wqy-microhei``, with chromium).
Without one, :class:`PdfUnavailable` says so instead of printing boxes.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from fpdf import FPDF
from fpdf.errors import FPDFException

from cloud.ops.model.errors import WorkOrderError

FONT_CANDIDATES: Final = (
    Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"),
    Path("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"),
    Path("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"),
)
PERIOD_ZH: Final = {"day": "日报", "week": "周报", "month": "月报"}


class PdfUnavailable(WorkOrderError):
    code = "unavailable"


def find_font() -> Path:
    for path in FONT_CANDIDATES:
        if path.exists():
            return path
    raise PdfUnavailable("no CJK font installed for the PDF (install fonts-wqy-microhei) / 未安装中文字体")


def _table(pdf: FPDF, title: str, rows: list[dict[str, Any]]) -> None:
    pdf.set_font("cjk", size=11)
    pdf.cell(0, 8, title, new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=8)
    if not rows:
        pdf.cell(0, 6, "无数据 / no data", new_x="LMARGIN", new_y="NEXT")
        return
    with pdf.table(text_align="LEFT", line_height=5) as table:
        table.row([str(k) for k in rows[0]])
        for row in rows:
            table.row(["" if v is None else str(v) for v in row.values()])
    pdf.ln(3)


def _cost_chart(pdf: FPDF, energy: list[dict[str, Any]]) -> None:
    if not energy:
        return
    pdf.set_font("cjk", size=11)
    pdf.cell(0, 8, "各表电费 / energy cost per meter (CNY)", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=8)
    top = max(Decimal(e["cost"]) for e in energy) or Decimal(1)
    width = pdf.epw - 40
    for e in energy[:30]:
        y = pdf.get_y()
        pdf.cell(38, 5, e["device"])
        bar = float(Decimal(e["cost"]) / top) * width
        pdf.set_fill_color(60, 120, 200)
        pdf.rect(pdf.l_margin + 40, y + 1, max(bar, 0.3), 3, style="F")
        pdf.set_xy(pdf.l_margin + 40 + bar + 2, y)
        pdf.cell(20, 5, e["cost"], new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def render(report: dict[str, Any]) -> bytes:
    pdf = FPDF(format="A4")
    try:
        font = str(find_font())
        pdf.add_font("cjk", fname=font)
        pdf.add_font("cjk", style="B", fname=font)  # table headings are bold; the face has no bold cut
        pdf.set_auto_page_break(auto=True, margin=12)
        pdf.add_page()
        pdf.set_font("cjk", size=16)
        pdf.cell(0, 10, f"{report['community']} 物业运营{PERIOD_ZH[report['period']]} / "
                        f"property operations {report['period']} report", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=9)
        status = "" if report["final"] else "（未结束 / period not over）"
        pdf.cell(0, 6, f"{report['start']} – {report['end']} ({report['timezone']}){status} · "
                       f"生成于 / generated {report['generated_at']}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        _table(pdf, "服务水平 / SLA, MTTA, MTTR (min)", [report["sla"]])
        _table(pdf, "工单 / work orders by origin and priority", report["work_orders"])
        _table(pdf, "计划维保 / planned maintenance", report["maintenance"])
        _table(pdf, "巡检覆盖 / inspection coverage", report["inspections"])
        _cost_chart(pdf, report["energy"])
        _table(pdf, "能耗与电费 / energy and cost (TOU)", report["energy"])
        _table(pdf, "维保单位合同履约 / contractor SLA compliance", report.get("contractors", []))
        return bytes(pdf.output())
    except (FPDFException, OSError) as exc:
        raise PdfUnavailable(f"the PDF could not be rendered: {exc}") from exc
