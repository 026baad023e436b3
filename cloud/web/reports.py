"""The manager's report pages (日清-周结-月报): one community's or the company's day, week or month,
with its charts, every table, a CSV download per table and the PDF.

One read model: the page renders the very dict the API returns (:func:`cloud.ops.reports.manager.build`,
:func:`cloud.ops.reports.company.build_company`) and the charts the PDF draws
(:func:`cloud.ops.reports.charts.charts`); the downloads are the API's own CSV and PDF routes, so
the page, the CSV and the PDF cannot disagree. Dates and times are the community's local ones.
Charts are server-side SVG (no script, print-friendly, nothing for the CSP to allow).

``/reports/settings`` keeps a community's energy targets and report subscriptions (and, for admins,
the company's subscriptions). Its forms post to the API's own routes (``static/admin.js``, as the
admin pages do), so who may change what, the validation and its per-field 422 are the API's; the
page lists what the API lists (:func:`cloud.ops.reports.repo.list_targets`,
:func:`cloud.ops.reports.schedule.subscription_views`), times in the community's zone.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, get_args
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, status
from fastapi.responses import Response

from cloud.auth.deps import PageUser, app_pool
from cloud.auth.users import User
from cloud.http.deps import get_clock
from cloud.http.rendering import render
from cloud.ops.model.errors import WorkOrderError
from cloud.ops.reports import repo
from cloud.ops.reports.charts import charts
from cloud.ops.reports.company import build_company
from cloud.ops.reports.manager import Period, build, tables
from cloud.ops.reports.schedule import subscription_views
from cloud.ops.reports.tariffs import shipped
from cloud.registry.admin import list_buildings

router = APIRouter(include_in_schema=False)
PERIODS: tuple[str, ...] = get_args(Period)


def _period(request: Request) -> Period:
    raw = request.query_params.get("period", "month")
    return raw if raw in PERIODS else "month"  # type: ignore[return-value]


def _start(request: Request, today: date) -> date:
    try:
        return date.fromisoformat(request.query_params.get("start", ""))
    except ValueError:
        return today


async def _page(request: Request, user: User, community: str | None) -> Response:
    if not user.is_staff:
        return render(request, "error.html", user, status.HTTP_403_FORBIDDEN, message_key="error.forbidden")
    period = _period(request)
    now = get_clock(request).now()
    async with app_pool(request).connection() as conn:
        visible = await repo.community_codes(conn, user.scope())
        if community is not None and community not in visible:
            return render(request, "error.html", user, status.HTTP_404_NOT_FOUND, message_key="error.not_found")
        zones = await repo.community_zones(conn, community or (visible[0] if visible else None))
        start = _start(request, now.astimezone(ZoneInfo(zones[0] if zones else "Asia/Shanghai")).date())
        try:
            if community is None:
                report = await build_company(conn, user.scope(), period, start, shipped(), now)
            else:
                report = await build(conn, community, period, start, shipped(), now)
        except WorkOrderError as exc:
            code = status.HTTP_404_NOT_FOUND if exc.code == "not_found" else status.HTTP_422_UNPROCESSABLE_ENTITY
            return render(request, "error.html", user, code, message=str(exc))
    query = {**({"community": community} if community else {}), "period": period, "start": report["start"]}
    api = "/api/v1/manager-reports" + ("" if community else "/company")
    downloads = {name: f"{api}/csv?{urlencode({**query, 'table': name})}" for name in tables(report)}
    return render(request, "reports.html", user, report=report, charts=charts(report), tables=tables(report),
                  csv=downloads, pdf=f"{api}/pdf?{urlencode(query)}", communities=visible, community=community,
                  period=period, periods=PERIODS)


@router.get("/reports")
async def community_report_page(request: Request, user: PageUser,
                                community: Annotated[str | None, Query()] = None) -> Response:
    """``community`` is declared so the authorization matrix sweeps another tenant's code in it."""
    if not community:
        async with app_pool(request).connection() as conn:
            visible = await repo.community_codes(conn, user.scope())
        community = visible[0] if visible else None
    if community is None:
        return render(request, "error.html", user, status.HTTP_404_NOT_FOUND, message_key="error.not_found")
    return await _page(request, user, community[:64])


@router.get("/reports/company")
async def company_report_page(request: Request, user: PageUser) -> Response:
    return await _page(request, user, None)


@router.get("/reports/settings")
async def report_settings_page(request: Request, user: PageUser,
                               community: Annotated[str | None, Query()] = None) -> Response:
    """Energy targets and report subscriptions of ``community`` (default: the user's first).

    ``community`` is a declared query parameter so the authorization matrix puts another tenant's
    code in it (404 from the policy); the check below repeats it for the default community."""
    if not user.is_staff:
        return render(request, "error.html", user, status.HTTP_403_FORBIDDEN, message_key="error.forbidden")
    async with app_pool(request).connection() as conn:
        visible = await repo.community_codes(conn, user.scope())
        community = (community or (visible[0] if visible else ""))[:64]
        if community not in visible:
            return render(request, "error.html", user, status.HTTP_404_NOT_FOUND, message_key="error.not_found")
        targets = await repo.list_targets(conn, community)
        buildings = [b.code for b in await list_buildings(conn, community)]
        subscriptions = await subscription_views(conn, user.scope(), get_clock(request).now())
        zones = await repo.community_zones(conn, community)
    return render(request, "report_settings.html", user, community=community, communities=visible,
                  timezone=zones[0] if zones else None, targets=targets, buildings=buildings, periods=PERIODS,
                  subscriptions=[s for s in subscriptions if s.community == community],
                  company=[s for s in subscriptions if s.community is None] if user.is_admin else None)
