"""REST for the manager's reports (日清-周结-月报): one community's day, week or month as JSON, each
of its tables as CSV (UTF-8 with a BOM, so spreadsheet programs read the Chinese correctly), and
the whole report as a PDF with its chart (:mod:`cloud.ops.reports.pdf`).

A past period gives the same numbers whenever it is asked for (:mod:`cloud.ops.reports.manager`);
the tariff is the shipped time-of-use example (:mod:`cloud.ops.reports.tariffs`).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import AdminUser, ClockDep, PoolDep, StaffUser, ensure_visible
from cloud.api.routers.workorders import raise_http
from cloud.auth.users import User
from cloud.ops.model.errors import WorkOrderError
from cloud.ops.notify.channels import normalise_channels
from cloud.ops.reports import pdf, repo
from cloud.ops.reports.company import build_company
from cloud.ops.reports.manager import COMPANY_TABLES, TABLES, Period, build, tables, to_csv
from cloud.ops.reports.schedule import SubscriptionView, subscription_views
from cloud.ops.reports.targets import Target
from cloud.ops.reports.tariffs import shipped

router = APIRouter(prefix="/api/v1/manager-reports", tags=["reports"])

Community = Annotated[str, Query(min_length=1, max_length=64)]
Start = Annotated[date, Query(description="any day of the period (local)")]


async def _report(pool: Any, community: str | None, period: Period, start: date, now: Any,
                  user: User | None = None) -> dict[str, Any]:
    """The community's report, or (``community`` None) the company report of ``user``'s communities."""
    async with pool.connection() as conn:
        try:
            if community is None:
                assert user is not None
                return await build_company(conn, user.scope(), period, start, shipped(), now)
            return await build(conn, community, period, start, shipped(), now)
        except WorkOrderError as exc:
            raise_http(exc)


def csv_response(report: dict[str, Any], table: str) -> Response:
    """One table of the report as a CSV download (UTF-8 with a BOM); 404 for a table it lacks."""
    rows = tables(report).get(table)
    if rows is None:
        raise HTTPException(404, {"code": "not_found", "message": f"no table {table} / 无此表"})
    name = f"{report['community'] or 'company'}-{report['period']}-{report['start']}-{table}.csv"
    return Response("\ufeff" + to_csv(rows), media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def pdf_response(report: dict[str, Any]) -> Response:
    try:
        body = pdf.render(report)
    except pdf.PdfUnavailable as exc:
        raise HTTPException(503, {"code": exc.code, "message": str(exc)}) from exc
    name = f"{report['community'] or 'company'}-{report['period']}-{report['start']}.pdf"
    return Response(body, media_type="application/pdf",
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("")
async def get_report(user: StaffUser, pool: PoolDep, clock: ClockDep, community: Community, start: Start,
                     period: Period = "month") -> dict[str, Any]:
    ensure_visible(user, community)
    return await _report(pool, community, period, start, clock.now())


@router.get("/csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def get_report_csv(user: StaffUser, pool: PoolDep, clock: ClockDep, community: Community, start: Start,
                         table: Literal[TABLES], period: Period = "month") -> Response:  # type: ignore[valid-type]
    ensure_visible(user, community)
    return csv_response(await _report(pool, community, period, start, clock.now()), table)


@router.get("/pdf", response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
async def get_report_pdf(user: StaffUser, pool: PoolDep, clock: ClockDep, community: Community, start: Start,
                         period: Period = "month") -> Response:
    """The report as a PDF with its charts and tables (Chinese and English)."""
    ensure_visible(user, community)
    return pdf_response(await _report(pool, community, period, start, clock.now()))


@router.get("/company")
async def get_company_report(user: StaffUser, pool: PoolDep, clock: ClockDep, start: Start,
                             period: Period = "month") -> dict[str, Any]:
    """All communities the caller sees (admins: every one): a row per community, totals, summed tables."""
    return await _report(pool, None, period, start, clock.now(), user)


@router.get("/company/csv", response_class=Response, responses={200: {"content": {"text/csv": {}}}})
async def get_company_csv(user: StaffUser, pool: PoolDep, clock: ClockDep, start: Start,
                          table: Literal[COMPANY_TABLES], period: Period = "month") -> Response:  # type: ignore[valid-type]
    return csv_response(await _report(pool, None, period, start, clock.now(), user), table)


@router.get("/company/pdf", response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
async def get_company_pdf(user: StaffUser, pool: PoolDep, clock: ClockDep, start: Start,
                          period: Period = "month") -> Response:
    return pdf_response(await _report(pool, None, period, start, clock.now(), user))


class TargetIn(BaseModel):
    """An energy target: kWh for the community (no building) or one building, per period kind,
    from a local date on (see :mod:`cloud.ops.reports.targets` for which target a report uses)."""

    model_config = ConfigDict(extra="forbid")

    community: str = Field(min_length=1, max_length=64)
    building: str | None = Field(default=None, min_length=1, max_length=64)
    period: Period
    kwh: Decimal = Field(gt=0, le=Decimal("99999999999"), decimal_places=3)
    valid_from: date = Field(ge=date(2000, 1, 1), le=date(2099, 12, 31))


@router.get("/targets", response_model=list[Target])
async def get_targets(user: StaffUser, pool: PoolDep, community: Community) -> list[Target]:
    ensure_visible(user, community)
    async with pool.connection() as conn:
        return await repo.list_targets(conn, community)


@router.put("/targets", response_model=Target)
async def put_target(user: StaffUser, pool: PoolDep, clock: ClockDep, body: TargetIn) -> Target:
    ensure_visible(user, body.community)
    target = Target(body.community, body.building, body.period, body.kwh, body.valid_from)
    async with pool.connection() as conn:
        await repo.set_target(conn, target, clock.now())
    return target


class SubscriptionIn(BaseModel):
    """A report subscription: a period kind and its recipients — email addresses (the PDF
    attached) and messenger URLs (a summary with a link) — for one community, or (on the company
    route, admins only) for the company report."""

    model_config = ConfigDict(extra="forbid")

    community: str | None = Field(default=None, min_length=1, max_length=64)
    period: Period = "month"
    emails: list[Annotated[str, Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=200)]] = Field(
        default_factory=list, max_length=20)
    messengers: list[Annotated[str, Field(max_length=500)]] = Field(default_factory=list, max_length=10)
    language: Literal["zh", "en"] = "zh"


@router.get("/subscriptions", response_model=list[SubscriptionView])
async def get_subscriptions(user: StaffUser, pool: PoolDep, clock: ClockDep) -> list[SubscriptionView]:
    """The caller's communities' subscriptions (admins: all, company ones too), stopped ones
    included, each with the next period it sends and when that period closes."""
    async with pool.connection() as conn:
        return await subscription_views(conn, user.scope(), clock.now())


def _invalid(field: str, kind: str, message: str) -> HTTPException:
    """A 422 naming its field as pydantic's do (``detail: [{loc, msg, type}]``), so the settings
    page shows it under that field, in the page's words for ``kind``."""
    return HTTPException(422, {"code": "invalid", "message": message,
                               "detail": [{"loc": ["body", field], "msg": message, "type": kind}]})


async def _subscribe(pool: Any, community: str | None, body: SubscriptionIn, now: datetime) -> repo.Subscription:
    if not body.emails and not body.messengers:
        raise _invalid("emails", "missing", "emails or messengers: at least one recipient / 至少一个接收方")
    try:
        messengers = normalise_channels(body.messengers)
    except WorkOrderError as exc:
        raise _invalid("messengers", "value_error", str(exc)) from exc
    async with pool.connection() as conn:
        return await repo.add_subscription(conn, community, body.period, body.emails, messengers, body.language, now)


@router.post("/subscriptions", response_model=repo.Subscription, status_code=201)
async def post_subscription(user: StaffUser, pool: PoolDep, clock: ClockDep, body: SubscriptionIn) -> repo.Subscription:
    """Subscribe to one community's report (``community`` required)."""
    if body.community is None:
        raise HTTPException(422, {"code": "invalid", "message": "community: required (the company report has "
                                  "its own route, /company/subscriptions) / 需指定小区"})
    ensure_visible(user, body.community)
    return await _subscribe(pool, body.community, body, clock.now())


@router.post("/company/subscriptions", response_model=repo.Subscription, status_code=201)
async def post_company_subscription(user: AdminUser, pool: PoolDep, clock: ClockDep,
                                    body: SubscriptionIn) -> repo.Subscription:
    """Subscribe to the company report of every community (admins); ``community`` must be empty."""
    if body.community is not None:
        raise HTTPException(422, {"code": "invalid", "message": "community: leave empty for the company report"})
    return await _subscribe(pool, None, body, clock.now())


@router.delete("/subscriptions/{subscription_id}", status_code=204)
async def delete_subscription(user: StaffUser, pool: PoolDep, subscription_id: int) -> Response:
    """Unsubscribe: the subscription stops (kept, inactive, with the last period it sent); repeatable."""
    async with pool.connection() as conn:
        if not await repo.remove_subscription(conn, subscription_id, user.scope()):
            raise HTTPException(404, {"code": "not_found", "message": "no such subscription / 无此订阅"})
    return Response(status_code=204)
