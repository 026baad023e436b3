"""The property staff's operations pages (issue 17): maintenance plans (each device's next due
date, the lift compliance flag, the condition-based reason; create and edit a plan from a
template), a plan's history (completed orders with checklist, readings, photos and both drawn
signatures), the second confirmation of a completed maintenance (the staff's own signature),
inspection routes (create/edit, checkpoints, a printable QR sheet, coverage per day and missed
checkpoints) and contracts (terms, kinds of work, validity, the holder's measured compliance).

The pages render the same read models the API returns (:mod:`cloud.ops.maintenance.views`,
:mod:`cloud.ops.inspections.views`), so the two cannot disagree; dates and times are the
community's. Forms post back here (PRG, CSRF-checked by the app-wide dependency); a form's
``community`` field is checked against the user's communities like a ``?community=`` is by the
policy table. Domain errors come back as the error page with the domain's message (zh / en).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request, status
from fastapi.responses import RedirectResponse, Response
from psycopg import AsyncConnection

from cloud.auth.deps import PageUser, app_pool
from cloud.auth.users import User
from cloud.http.deps import get_clock, get_policy
from cloud.http.rendering import render
from cloud.ops.inspections import qr
from cloud.ops.inspections import repo as inspections
from cloud.ops.inspections.views import route_detail, route_view
from cloud.ops.maintenance import contracts, repo
from cloud.ops.maintenance.completion import confirm
from cloud.ops.maintenance.templates import shipped
from cloud.ops.maintenance.views import contract_views, plan_history, plan_view
from cloud.ops.model.errors import WorkOrderError
from cloud.ops.routing.contracts import WORK
from cloud.ops.routing.staff import list_contractors
from cloud.ops.workorders import queries
from cloud.ops.workorders import repo as wo_repo

router = APIRouter(prefix="/ops", include_in_schema=False)

CommunityQ = Annotated[str | None, Query(min_length=1, max_length=64)]
CommunityF = Annotated[str, Form(min_length=1, max_length=64)]
SKILLS = ("elevator", "water", "electrical", "access", "general")


def _community(user: User, asked: str | None) -> str | None:
    """The asked community (the policy table checked it), else the user's first."""
    return asked or (user.communities[0] if user.communities else None)


def _error(request: Request, user: User, exc: WorkOrderError) -> Response:
    code = {"not_found": 404, "not_allowed": 403, "illegal_transition": 409}.get(exc.code, 422)
    return render(request, "error.html", user, code, message=str(exc))


def _not_found(request: Request, user: User) -> Response:
    return render(request, "error.html", user, status.HTTP_404_NOT_FOUND, message_key="error.not_found")


async def _change(request: Request, user: User, change: Callable[[AsyncConnection[Any]], Awaitable[str]]) -> Response:
    """A form's change in one transaction, then a redirect (PRG) to the page it names; a domain
    error instead shows the error page with the domain's message (no 500, nothing half-written)."""
    async with app_pool(request).connection() as conn:
        try:
            async with conn.transaction():
                target = await change(conn)
        except WorkOrderError as exc:
            return _error(request, user, exc)
    return RedirectResponse(target, status.HTTP_303_SEE_OTHER)


def _int(text: str) -> int | None:
    return int(text) if text.strip().isdigit() and len(text.strip()) < 10 else None


def _day(text: str) -> date | None:
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return None
    return day if date(2000, 1, 1) <= day <= date(2099, 12, 31) else None


# --- maintenance plans ---------------------------------------------------------------------------

@router.get("/plans")
async def plans_page(request: Request, user: PageUser, community: CommunityQ = None) -> Response:
    chosen = _community(user, community)
    if chosen is None:
        return _not_found(request, user)
    catalog, now = shipped(), get_clock(request).now()
    async with app_pool(request).connection() as conn:
        plans = [await plan_view(conn, catalog, p, now) for p in await repo.active_plans(conn, chosen)]
        today = now.astimezone(await contracts.community_zone(conn, chosen)).date()
    return render(request, "ops_plans.html", user, community=chosen, plans=plans,
                  templates=sorted(catalog.templates.items()), today=today)


@router.post("/plans")
async def plan_create(request: Request, user: PageUser, community: CommunityF,
                      scope: Annotated[str, Form(pattern="^(device|building|community)$")],
                      template: Annotated[str, Form(min_length=1, max_length=64)],
                      starts_on: Annotated[str, Form(max_length=10)],
                      target: Annotated[str, Form(max_length=64)] = "",
                      interval_days: Annotated[str, Form(max_length=9)] = "",
                      condition_based: Annotated[str, Form(max_length=8)] = "") -> Response:
    if not user.can_see(community):
        return _not_found(request, user)
    day = _day(starts_on)
    if day is None:
        return render(request, "error.html", user, 422, message=_BAD_START)

    async def change(conn: AsyncConnection[Any]) -> str:
        plan = await repo.create_plan(conn, shipped(), community=community, scope=scope,  # type: ignore[arg-type]
                                      target=target.strip(), template=template, starts_on=day,
                                      now=get_clock(request).now(), interval_days=_int(interval_days),
                                      condition_based=bool(condition_based))
        return f"/ops/plans/{plan.id}"

    return await _change(request, user, change)


@router.get("/plans/{plan_id}")
async def plan_page(request: Request, plan_id: int, user: PageUser) -> Response:
    async with app_pool(request).connection() as conn:
        try:
            history = await plan_history(conn, shipped(), plan_id, get_clock(request).now())
        except WorkOrderError:
            return _not_found(request, user)
    tpl = shipped().get(history.plan.template)
    return render(request, "ops_plan.html", user, history=history, plan=history.plan, tpl=tpl)


@router.post("/plans/{plan_id}")
async def plan_edit(request: Request, plan_id: int, user: PageUser,
                    interval_days: Annotated[str, Form(max_length=9)] = "",
                    lead_days: Annotated[str, Form(max_length=9)] = "",
                    condition_based: Annotated[str, Form(max_length=8)] = "",
                    active: Annotated[str, Form(max_length=8)] = "") -> Response:
    async def change(conn: AsyncConnection[Any]) -> str:
        current = await repo.get_plan(conn, plan_id)
        await repo.update_plan(conn, shipped(), plan_id, interval_days=_int(interval_days), lead_days=_int(lead_days),
                               condition_based=bool(condition_based), assignee_id=current.assignee_id,
                               active=bool(active))
        return f"/ops/plans/{plan_id}?saved=1"

    return await _change(request, user, change)


# --- the second confirmation ---------------------------------------------------------------------

@router.get("/confirm/{work_order_id}")
async def confirm_page(request: Request, work_order_id: int, user: PageUser) -> Response:
    async with app_pool(request).connection() as conn:
        order = await repo.find_order(conn, work_order_id)
        try:
            wo = await wo_repo.get(conn, work_order_id)
        except WorkOrderError:
            return _not_found(request, user)
        if order is None:
            return render(request, "error.html", user, status.HTTP_409_CONFLICT,
                          message=f"工单 #{work_order_id} 不是计划维保 / work order #{work_order_id} is not a planned "
                                  "maintenance")
        names = await repo.actor_names(conn, {order[k] for k in ("maintainer", "confirmed_by") if order[k]})
    return render(request, "ops_confirm.html", user, wo=wo, order=order, tpl=shipped().get(order["template"]),
                  names=names)


@router.post("/confirm/{work_order_id}")
async def confirm_submit(request: Request, work_order_id: int, user: PageUser,
                         signature: Annotated[str, Form(max_length=200_000)] = "") -> Response:
    async def change(conn: AsyncConnection[Any]) -> str:
        actor = await queries.actor_for(conn, user.id, user.name, user.role.value)
        await confirm(conn, get_policy(request), work_order_id, actor, signature, get_clock(request).now())
        return f"/ops/confirm/{work_order_id}"

    return await _change(request, user, change)


# --- inspection routes ---------------------------------------------------------------------------

def _checkpoints(text: str) -> list[inspections.NewCheckpoint]:
    """One checkpoint per line: ``name`` or ``name | unit`` (a reading is asked in that unit)."""
    out = []
    for line in text.splitlines()[:200]:
        name, _, unit = line.partition("|")
        if name.strip():
            out.append(inspections.NewCheckpoint(name.strip()[:200], reading_unit=unit.strip()[:16]))
    return out


@router.get("/routes")
async def routes_page(request: Request, user: PageUser, community: CommunityQ = None) -> Response:
    chosen = _community(user, community)
    if chosen is None:
        return _not_found(request, user)
    now = get_clock(request).now()
    async with app_pool(request).connection() as conn:
        details = [await route_detail(conn, r.id, now, days=1) for r in await inspections.routes(conn, chosen)]
    return render(request, "ops_routes.html", user, community=chosen, details=details)


@router.post("/routes")
async def route_create(request: Request, user: PageUser, community: CommunityF,
                       name: Annotated[str, Form(min_length=1, max_length=200)],
                       every_hours: Annotated[int, Form(ge=1, le=24)],
                       checkpoints: Annotated[str, Form(max_length=20_000)],
                       grace_minutes: Annotated[int, Form(ge=0, le=720)] = 30) -> Response:
    if not user.can_see(community):
        return _not_found(request, user)
    async def change(conn: AsyncConnection[Any]) -> str:
        route = await inspections.create_route(
            conn, community=community, name=name.strip(), every_hours=every_hours, grace_minutes=grace_minutes,
            checkpoints=_checkpoints(checkpoints), now=get_clock(request).now())
        return f"/ops/routes/{route.id}"

    return await _change(request, user, change)


@router.get("/routes/{route_id}")
async def route_page(request: Request, route_id: int, user: PageUser) -> Response:
    async with app_pool(request).connection() as conn:
        try:
            detail = await route_detail(conn, route_id, get_clock(request).now())
        except WorkOrderError:
            return _not_found(request, user)
    return render(request, "ops_route.html", user, detail=detail, route=detail.route)


@router.post("/routes/{route_id}")
async def route_edit(request: Request, route_id: int, user: PageUser,
                     name: Annotated[str, Form(min_length=1, max_length=200)],
                     every_hours: Annotated[int, Form(ge=1, le=24)],
                     grace_minutes: Annotated[int, Form(ge=0, le=720)] = 30,
                     add_checkpoints: Annotated[str, Form(max_length=20_000)] = "") -> Response:
    async def change(conn: AsyncConnection[Any]) -> str:
        await inspections.update_route(conn, route_id, name=name.strip(), every_hours=every_hours,
                                       grace_minutes=grace_minutes, add=_checkpoints(add_checkpoints))
        return f"/ops/routes/{route_id}?saved=1"

    return await _change(request, user, change)


@router.get("/routes/{route_id}/qr")
async def route_qr_sheet(request: Request, route_id: int, user: PageUser) -> Response:
    """A printable sheet: one QR code per checkpoint with its name and code (A4, print from the browser)."""
    async with app_pool(request).connection() as conn:
        try:
            route = await route_view(conn, await inspections.get_route(conn, route_id))
        except WorkOrderError:
            return _not_found(request, user)
    labels = [(cp, qr.data_uri(cp.code, cp.name)) for cp in route.checkpoints]
    return render(request, "ops_qr.html", user, route=route, labels=labels)


# --- contracts -----------------------------------------------------------------------------------

@router.get("/contracts")
async def contracts_page(request: Request, user: PageUser, community: CommunityQ = None) -> Response:
    chosen = _community(user, community)
    if chosen is None:
        return _not_found(request, user)
    async with app_pool(request).connection() as conn:
        views = await contract_views(conn, chosen, get_clock(request).now())
        companies = await list_contractors(conn)
    return render(request, "ops_contracts.html", user, community=chosen, contracts=views, companies=companies,
                  skills=SKILLS, work_kinds=WORK)


@dataclass(frozen=True, slots=True)
class TermsForm:
    """The terms fields of the contract forms (create and edit), read once."""

    work: list[str]
    on_site: timedelta
    resolve: timedelta
    starts_on: date | None
    ends_on: date | None
    reference: str


def terms_form(on_site_within_min: Annotated[int, Form(gt=0, le=60 * 24 * 30)],
               resolve_within_min: Annotated[int, Form(gt=0, le=60 * 24 * 90)],
               starts_on: Annotated[str, Form(max_length=10)],
               work: Annotated[list[str], Form(max_length=3)],
               ends_on: Annotated[str, Form(max_length=10)] = "",
               reference: Annotated[str, Form(max_length=64)] = "") -> TermsForm:
    return TermsForm([w for w in work if w in WORK], timedelta(minutes=on_site_within_min),
                     timedelta(minutes=resolve_within_min), _day(starts_on),
                     _day(ends_on) if ends_on.strip() else None, reference.strip())


Terms = Annotated[TermsForm, Depends(terms_form)]
_BAD_START = "starts_on: YYYY-MM-DD / 起始日期格式无效"


@router.post("/contracts")
async def contract_create(request: Request, user: PageUser, community: CommunityF, terms: Terms,
                          contractor_id: Annotated[int, Form(gt=0, lt=2**31)],
                          skill: Annotated[str, Form(pattern="^(elevator|water|electrical|access|general)$")],
                          also: Annotated[list[str], Form(max_length=100)] = []) -> Response:  # noqa: B006
    """The page's community and any ``also`` ticked: one contract each, all or none."""
    communities = list(dict.fromkeys([community, *also]))
    if not all(user.can_see(c) for c in communities):
        return _not_found(request, user)
    start = terms.starts_on
    if start is None:
        return render(request, "error.html", user, 422, message=_BAD_START)

    async def change(conn: AsyncConnection[Any]) -> str:
        for each in communities:
            await contracts.add_contract(conn, contractor_id=contractor_id, community=each, skill=skill,
                                         on_site_within=terms.on_site, resolve_within=terms.resolve,
                                         starts_on=start, ends_on=terms.ends_on, work=terms.work,
                                         reference=terms.reference, now=get_clock(request).now())
        return f"/ops/contracts?community={community}"

    return await _change(request, user, change)


@router.post("/contracts/{contract_id}")
async def contract_edit(request: Request, contract_id: int, user: PageUser, terms: Terms) -> Response:
    start = terms.starts_on
    if start is None:
        return render(request, "error.html", user, 422, message=_BAD_START)

    async def change(conn: AsyncConnection[Any]) -> str:
        current = await contracts.get_contract(conn, contract_id)
        await contracts.update_contract(conn, contract_id, on_site_within=terms.on_site, resolve_within=terms.resolve,
                                        starts_on=start, ends_on=terms.ends_on, work=terms.work,
                                        reference=terms.reference)
        return f"/ops/contracts?community={current.community}"

    return await _change(request, user, change)
