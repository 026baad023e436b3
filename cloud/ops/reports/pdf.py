"""The manager's report (community or company) as a PDF (fpdf2: pure Python, embeds a TrueType
subset): its charts (:func:`cloud.ops.reports.charts.charts`, the same the page draws) as vector
bars (no plotting library, no raster images: sharp when printed, the file small), then every
table the CSV export has.

Chinese needs a CJK font: the first found of :data:`FONT_CANDIDATES` is embedded (subset) — the
project's system dependencies install WenQuanYi Micro Hei (``fonts-wqy-microhei``, with chromium).
Without one, :class:`PdfUnavailable` says so instead of printing boxes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

from fpdf import FPDF
from fpdf.errors import FPDFException

from cloud.ops.model.errors import WorkOrderError
from cloud.ops.reports.charts import Chart, charts
from cloud.ops.reports.manager import TABLE_TITLES, tables

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


def _chart(pdf: FPDF, chart: Chart) -> None:
    pdf.set_font("cjk", size=11)
    unit = f" ({chart.unit})" if chart.unit else ""
    pdf.cell(0, 8, f"{chart.title_zh} / {chart.title_en}{unit}", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("cjk", size=8)
    width = pdf.epw - 70
    for label, value in chart.bars:
        y = pdf.get_y()
        pdf.cell(48, 5, label[:28])
        bar = value / chart.top * width
        pdf.set_fill_color(60, 120, 200)
        pdf.rect(pdf.l_margin + 50, y + 1, max(bar, 0.3), 3, style="F")
        pdf.set_xy(pdf.l_margin + 50 + bar + 2, y)
        pdf.cell(18, 5, f"{value:g}", new_x="LMARGIN", new_y="NEXT")
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
        who = report["community"] or "全公司 / company"
        pdf.cell(0, 10, f"{who} 物业运营{PERIOD_ZH[report['period']]} / "
                        f"property operations {report['period']} report", new_x="LMARGIN", new_y="NEXT")
        pdf.set_font("cjk", size=9)
        status = "" if report["final"] else "（未结束 / period not over）"
        pdf.cell(0, 6, f"{report['start']} – {report['end']} ({report['timezone']}){status} · "
                       f"生成于 / generated {report['generated_at']}", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
        for chart in charts(report):
            _chart(pdf, chart)
        for name, rows in tables(report).items():
            _table(pdf, TABLE_TITLES.get(name, name), rows)
        return bytes(pdf.output())
    except (FPDFException, OSError) as exc:
        raise PdfUnavailable(f"the PDF could not be rendered: {exc}") from exc
