"""The community loop's phone pages (issue 18): a resident's complaints (file one, follow its grade,
commitments and progress, answer the feedback) and their chosen channel; a volunteer's points
(balance, ledger, redemption requests). Plain form posts (PRG, CSRF-protected like every page
form), the words from the same catalogs and template table as the API.

The domain stays in ``cloud.ops`` (complaints, points, notify.preferences): these handlers only
check who may ask and shape the view.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, status
from fastapi.responses import RedirectResponse, Response

from cloud.auth.deps import PageUser, app_pool
from cloud.auth.roles import Role
from cloud.auth.users import User
from cloud.http.deps import get_clock, get_policy
from cloud.http.i18n import pick_lang
from cloud.http.rendering import render
from cloud.ops.complaints import repo as complaints
from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import NotFound, WorkOrderError
from cloud.ops.model.states import Action
from cloud.ops.notify import preferences, templates
from cloud.ops.points import ledger, redemptions
from cloud.ops.workorders import repo
from cloud.ops.workorders.reports import like
from cloud.queries.complaints import (
    ComplaintRow,
    community_complaints,
    complaint_communities,
    resident_complaints,
)
from cloud.queries.workorders import resident_orders
from cloud.web.inbox import butler_of

router = APIRouter(include_in_schema=False)


def _error(request: Request, user: User, exc: WorkOrderError) -> Response:
    code = status.HTTP_404_NOT_FOUND if isinstance(exc, NotFound) else 422
    return render(request, "error.html", user, code, message=str(exc))


def _forbidden(request: Request, user: User) -> Response:
    return render(request, "error.html", user, status.HTTP_403_FORBIDDEN, message_key="error.forbidden")


def _digits(request: Request, name: str) -> str | None:
    value = request.query_params.get(name)
    return value if value and value.isdigit() and len(value) < 19 else None


async def _complaint_view(conn: Any, row: ComplaintRow, lang: str) -> tuple[dict[str, Any], str | None]:
    """A complaint as both pages show it: grade and state in words, commitments in its community's
    time; and that zone, for the caller's other times."""
    data = row.model_dump()
    tz = await complaints.zone_of(conn, data)
    return data | {"grade_text": templates.text(f"grade.{row.grade}", lang),
                   "state_text": templates.text(f"complaint.state.{row.state}", lang),
                   "handle_by": templates.local(row.handle_due, tz),
                   "close_by": templates.local(row.close_due, tz)}, tz


@router.get("/resident/complaints")
async def complaints_page(request: Request, user: PageUser) -> Response:
    if user.role not in (Role.resident, Role.admin):
        return _forbidden(request, user)
    lang = pick_lang(request, user.lang)
    views: list[dict[str, Any]] = []
    async with app_pool(request).connection() as conn:
        for row in await resident_complaints(conn, user.id):
            view, tz = await _complaint_view(conn, row, lang)
            views.append(view | {"trail": [e | {"when": templates.local(e["at"], tz)}
                                           for e in await complaints.readable_trail(conn, row.id, lang)]})
        orders = await resident_orders(conn, user, 20)
        chosen = await preferences.get(conn, user.id)
    grades = [(g, templates.text(f"grade.{g}", lang)) for g in get_policy(request).complaint_grades]
    return render(request, "complaints.html", user, complaints=views, grades=grades, orders=orders, chosen=chosen,
                  channels=preferences.CHOICES, filed=_digits(request, "filed"),
                  replied=request.query_params.get("replied") == "1", saved=request.query_params.get("saved") == "1")


@router.post("/resident/complaints")
async def file_complaint(request: Request, user: PageUser,
                         text: Annotated[str, Form(min_length=1, max_length=4000)],
                         grade: Annotated[str, Form(max_length=32)] = "general",
                         work_order: Annotated[str, Form(max_length=19)] = "") -> Response:
    if user.role not in (Role.resident, Role.admin) or not user.communities:
        return _forbidden(request, user)
    linked = [int(work_order)] if work_order.isdigit() else []
    async with app_pool(request).connection() as conn:
        mine = {o.id: o.community for o in await resident_orders(conn, user, 100)}
        if any(w not in mine for w in linked):
            return render(request, "error.html", user, status.HTTP_404_NOT_FOUND, message_key="error.not_found")
        community = mine[linked[0]] if linked else sorted(user.communities)[0]
        try:
            row = await complaints.file(conn, get_policy(request), complaints.NewComplaint(
                community=community, grade=grade, text=text, reporter_user_id=user.id, work_order_ids=linked),
                get_clock(request).now(), Actor("user", user.id, user.name, user.role.value))
        except WorkOrderError as exc:
            return _error(request, user, exc)
    return RedirectResponse(f"/resident/complaints?filed={row['id']}", status.HTTP_303_SEE_OTHER)


@router.post("/resident/complaints/{complaint_id}/reply")
async def reply_complaint(request: Request, complaint_id: int, user: PageUser,
                          satisfied: Annotated[str, Form(pattern="^(yes|no)$")],
                          comment: Annotated[str, Form(max_length=1000)] = "") -> Response:
    if user.role not in (Role.resident, Role.admin):
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        try:
            await complaints.reply(conn, complaint_id, satisfied == "yes", comment,
                                   Actor("user", user.id, user.name, user.role.value), get_clock(request).now())
        except WorkOrderError as exc:
            return _error(request, user, exc)
    return RedirectResponse("/resident/complaints?replied=1", status.HTTP_303_SEE_OTHER)


@router.post("/resident/like/{work_order_id}")
async def like_repair(request: Request, work_order_id: int, user: PageUser) -> Response:
    """点赞: the resident likes the butler's work on their resolved order (counts to the star level)."""
    if user.role not in (Role.resident, Role.admin):
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        try:
            await like(conn, get_policy(request), work_order_id, Actor("user", user.id, user.name, user.role.value),
                       get_clock(request).now())
        except WorkOrderError as exc:
            return _error(request, user, exc)
    return RedirectResponse("/resident?liked=1", status.HTTP_303_SEE_OTHER)


@router.post("/me/channel")
async def choose_channel(request: Request, user: PageUser, channel: Annotated[str, Form(max_length=16)],
                         target: Annotated[str, Form(max_length=1000)] = "",
                         back: Annotated[str, Form(max_length=64)] = "/resident/complaints") -> Response:
    async with app_pool(request).connection() as conn:
        try:
            await preferences.choose(conn, user.id, channel, target or None)
        except WorkOrderError as exc:
            return _error(request, user, exc)
    page = back if back in ("/resident/complaints", "/volunteer/points") else "/resident/complaints"
    return RedirectResponse(f"{page}?saved=1", status.HTTP_303_SEE_OTHER)


# --- volunteers: points, redemption requests; full-time butlers hand them tasks ---------------------

@router.get("/volunteer/points")
async def points_page(request: Request, user: PageUser) -> Response:
    async with app_pool(request).connection() as conn:
        butler = await butler_of(conn, user)
        if butler is None:
            return _forbidden(request, user)
        balance = await ledger.balance(conn, butler["id"])
        entries = await ledger.entries(conn, butler["id"], 100)
        asked = await redemptions.of_butler(conn, butler["id"])
        chosen = await preferences.get(conn, user.id)
    return render(request, "points.html", user, butler=butler, balance=balance, entries=entries, asked=asked,
                  chosen=chosen, channels=preferences.CHOICES, requested=request.query_params.get("requested") == "1",
                  saved=request.query_params.get("saved") == "1")


@router.post("/volunteer/points/redeem")
async def ask_redemption(request: Request, user: PageUser, points: Annotated[int, Form(ge=1, le=100_000)],
                         service: Annotated[str, Form(min_length=1, max_length=500)]) -> Response:
    async with app_pool(request).connection() as conn:
        butler = await butler_of(conn, user)
        if butler is None:
            return _forbidden(request, user)
        try:
            await redemptions.ask(conn, butler["id"], points, service, get_clock(request).now())
        except WorkOrderError as exc:
            return _error(request, user, exc)
    return RedirectResponse("/volunteer/points?requested=1", status.HTTP_303_SEE_OTHER)


@router.post("/volunteers/handoff/{work_order_id}")
async def hand_off(request: Request, work_order_id: int, user: PageUser,
                   volunteer: Annotated[int, Form(ge=1, lt=2**63)]) -> Response:
    """A full-time butler hands their order to a volunteer (``reassign`` with the volunteer named):
    the state machine, the trail and the volunteer's inbox are the API's (:func:`repo.transition`)."""
    async with app_pool(request).connection() as conn:
        butler = await butler_of(conn, user)
        actor = (Actor.butler(butler["id"], butler["name"]) if butler is not None and user.role is Role.butler
                 else Actor("user", user.id, user.name, user.role.value))
        try:
            await repo.transition(conn, get_policy(request), work_order_id, Action.reassign, actor,
                                  get_clock(request).now(), assignee_id=volunteer)
        except WorkOrderError as exc:
            return _error(request, user, exc)
    return RedirectResponse(f"/inbox?handed={volunteer}", status.HTTP_303_SEE_OTHER)


# --- staff: complaints to move on, redemption requests to decide ------------------------------------

@router.get("/complaints")
async def staff_complaints(request: Request, user: PageUser) -> Response:
    """Staff's page of the communities' complaints (newest first) with the next actions, and the
    volunteers' pending redemption requests (the API's rules: ``complaints.transition``,
    ``redemptions.decide``)."""
    if user.role not in (Role.admin, Role.engineer):
        return _forbidden(request, user)
    lang = pick_lang(request, user.lang)
    views: list[dict[str, Any]] = []
    asked: list[redemptions.Redemption] = []
    async with app_pool(request).connection() as conn:
        for community in sorted(user.communities) if not user.is_admin else await complaint_communities(conn):
            for row in await community_complaints(conn, community, None, 100):
                view, _tz = await _complaint_view(conn, row, lang)
                views.append(view | {"actions": [a for a, (src, _t) in complaints.TRANSITIONS.items()
                                                 if row.state in src]})
            asked += await redemptions.pending(conn, community)
    return render(request, "staff_complaints.html", user, complaints=views, asked=asked)


@router.post("/complaints/{complaint_id}/{action}")
async def staff_move_complaint(request: Request, complaint_id: int, action: str, user: PageUser,
                               note: Annotated[str, Form(max_length=2000)] = "") -> Response:
    if user.role not in (Role.admin, Role.engineer):
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        try:
            await complaints.transition(conn, complaint_id, action, Actor("user", user.id, user.name, user.role.value),
                                        get_clock(request).now(), note)
        except WorkOrderError as exc:
            return _error(request, user, exc)
    return RedirectResponse(f"/complaints#complaint-{complaint_id}", status.HTTP_303_SEE_OTHER)


@router.post("/points/redemptions/{redemption_id}")
async def staff_decide_redemption(request: Request, redemption_id: int, user: PageUser,
                                  decision: Annotated[str, Form(pattern="^(approve|refuse)$")]) -> Response:
    if user.role not in (Role.admin, Role.engineer):
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        try:
            await redemptions.decide(conn, redemption_id, decision == "approve",
                                     Actor("user", user.id, user.name, user.role.value), get_clock(request).now())
        except WorkOrderError as exc:
            return _error(request, user, exc)
    return RedirectResponse("/complaints#redemptions", status.HTTP_303_SEE_OTHER)
