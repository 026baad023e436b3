"""REST for the manager's reports (日清-周结-月报): one community's day, week or month as JSON, each
of its tables as CSV (UTF-8 with a BOM, so spreadsheet programs read the Chinese correctly), and
the whole report as a PDF with its chart (:mod:`cloud.ops.reports.pdf`).

A past period gives the same numbers whenever it is asked for (:mod:`cloud.ops.reports.manager`);
the tariff is the shipped time-of-use example (:mod:`cloud.ops.reports.tariffs`).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from cloud.api.deps import ClockDep, PoolDep, StaffUser, ensure_visible
from cloud.api.routers.workorders import raise_http
from cloud.ops.model.errors import WorkOrderError
from cloud.ops.reports import pdf
from cloud.ops.reports.manager import Period, build, tables, to_csv
from cloud.ops.reports.tariffs import shipped

router = APIRouter(prefix="/api/v1/manager-reports", tags=["reports"])

Community = Annotated[str, Query(min_length=1, max_length=64)]
Start = Annotated[date, Query(description="any day of the period (local)")]


async def _report(pool: Any, community: str, period: Period, start: date, now: Any) -> dict[str, Any]:
    async with pool.connection() as conn:
        try:
            return await build(conn, community, period, start, shipped(), now)
        except WorkOrderError as exc:
            raise_http(exc)


@router.get("")
async def get_report(user: StaffUser, pool: PoolDep, clock: ClockDep, community: Community, start: Start,
                     period: Period = "month") -> dict[str, Any]:
    ensure_visible(user, community)
    return await _report(pool, community, period, start, clock.now())


@router.get("/csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def get_report_csv(user: StaffUser, pool: PoolDep, clock: ClockDep, community: Community, start: Start,
                         table: Literal["work_orders", "sla", "maintenance", "inspections", "energy", "contractors"],
                         period: Period = "month") -> Response:
    ensure_visible(user, community)
    report = await _report(pool, community, period, start, clock.now())
    name = f"{community}-{period}-{report['start']}-{table}.csv"
    return Response("\ufeff" + to_csv(tables(report)[table]), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/pdf", response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
async def get_report_pdf(user: StaffUser, pool: PoolDep, clock: ClockDep, community: Community, start: Start,
                         period: Period = "month") -> Response:
    """The report as a PDF with its tables and the energy-cost chart (Chinese and English)."""
    ensure_visible(user, community)
    report = await _report(pool, community, period, start, clock.now())
    try:
        body = pdf.render(report)
    except pdf.PdfUnavailable as exc:
        raise HTTPException(503, {"code": exc.code, "message": str(exc)}) from exc
    name = f"{community}-{period}-{report['start']}.pdf"
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})
