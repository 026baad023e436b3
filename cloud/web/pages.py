"""The HTML pages (server-rendered; htmx for partial updates, uPlot for charts, SSE for live data).

Roles and their home page: admin/engineer → fleet overview; butler → inbox; resident → report &
rate. Every page uses :data:`~cloud.auth.deps.PageUser` (a missing session redirects to
``/login``) and the same tenant-scoped queries as the JSON API. Work-order changes go through the
WORKORDERS part's domain functions (state machine, trail, notifications), never raw SQL.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, File, Form, HTTPException, Request, UploadFile, status
from fastapi.responses import FileResponse, RedirectResponse, Response

from cloud.auth.deps import (
    SESSION_COOKIE,
    PageUser,
    app_pool,
    auth_state,
    client_ip,
    require_same_origin,
    require_transition,
)
from cloud.auth.roles import Role
from cloud.auth.service import LoginRejected, LoginThrottled, authenticate
from cloud.auth.tokens import TokenInvalid
from cloud.auth.users import User, revoke_session
from cloud.http.deps import get_clock, get_policy
from cloud.http.i18n import pick_lang
from cloud.http.rendering import STATIC, render
from cloud.http.residents import present
from cloud.ops.delivery.hub import resident_recent
from cloud.ops.fleet.commands import known_profiles, submit
from cloud.ops.fleet.repo import command_target, device_commands
from cloud.ops.fleet.validate import device_actions, writable_points
from cloud.ops.workorders import profile
from cloud.queries.butlers import volunteers
from cloud.queries.complaints import cycle as complaint_cycle
from cloud.queries.device_values import chart_metrics, load_device_values
from cloud.queries.fleet import KINDS, STATES, FleetFilter, load_device, load_fleet
from cloud.queries.gateways import load_gateways, load_incarnations
from cloud.queries.health import load_health
from cloud.queries.history import device_alarms, device_work_orders, rule_titles
from cloud.queries.series import default_metric
from cloud.queries.sites import buildings_of, community_codes, gateway_devices, reportable_devices
from cloud.queries.stats import load_performance
from cloud.queries.workorders import resident_orders
from cloud.registry.bootstrap import gateway_identity, issue_token, revoke_gateway
from cloud.registry.provisioning import BrokerFiles
from cloud.runtime.errors import BrokerError
from cloud.web import photos
from cloud.web.inbox import ACTIONS, act, butler_of, inbox_orders, order_trail, rate_order, reopen_order, report
from device_profiles.display import fixed

log = logging.getLogger(__name__)
router = APIRouter(include_in_schema=False)

HOME = {Role.admin: "/fleet", Role.engineer: "/fleet", Role.butler: "/inbox", Role.resident: "/resident",
        Role.contractor: "/api/v1/contractor/orders"}  # contractors have no pages yet: their orders as JSON
STAFF = (Role.admin, Role.engineer)


def _forbidden(request: Request, user: User) -> Response:
    return render(request, "error.html", user, status.HTTP_403_FORBIDDEN, message_key="error.forbidden")


def _not_found(request: Request, user: User) -> Response:
    return render(request, "error.html", user, status.HTTP_404_NOT_FOUND, message_key="error.not_found")


def _safe_next(target: str | None) -> str | None:
    """Only local paths: an attacker's ``?next=https://evil`` must not become a redirect."""
    if not target:
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def _run_dir(request: Request) -> Path:
    settings = getattr(request.app.state, "settings", None)
    return Path(getattr(settings, "run_dir", ".run"))


# --- static files and login ---------------------------------------------------------------------

@router.get("/static/{path:path}")
async def static(path: str) -> Response:
    target = (STATIC / path).resolve()
    if not target.is_relative_to(STATIC.resolve()) or not target.is_file():
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")
    return FileResponse(target, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/login")
async def login_form(request: Request) -> Response:
    return render(request, "login.html", None, next=_safe_next(request.query_params.get("next")) or "")


@router.post("/login")
async def login(request: Request, username: Annotated[str, Form(max_length=64)],
                password: Annotated[str, Form(max_length=256)],
                next_url: Annotated[str, Form(alias="next", max_length=500)] = "") -> Response:
    require_same_origin(request)  # a login form posted from another site is refused (403)
    auth = auth_state(request)
    async with app_pool(request).connection() as conn:
        try:
            user = await authenticate(conn, auth.limiter, username, password, client_ip(request))
        except LoginThrottled as exc:
            return render(request, "login.html", None, status.HTTP_429_TOO_MANY_REQUESTS, next=next_url,
                          error_key="login.throttled", error_args={"s": exc.retry_after}, username=username)
        except LoginRejected:
            return render(request, "login.html", None, status.HTTP_401_UNAUTHORIZED, next=next_url,
                          error_key="login.failed", error_args={}, username=username)
    token, ttl = auth.tokens.issue(user.id, user.token_version, "session")
    response = RedirectResponse(_safe_next(next_url) or HOME[user.role], status.HTTP_303_SEE_OTHER)
    response.set_cookie(SESSION_COOKIE, token, max_age=ttl, httponly=True, samesite="lax",
                        secure=auth.secure_cookies, path="/")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    """End the session server-side too: the cookie is a 12-hour token, and a copy of it (another
    tab, a stolen cookie) must stop working at logout, not when it expires."""
    require_same_origin(request)
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        try:
            claims = auth_state(request).tokens.decode(cookie, "session")
        except TokenInvalid:
            claims = None
        if claims is not None:
            async with app_pool(request).connection() as conn:
                await revoke_session(conn, claims.user_id, claims.jti, claims.expires_at)
    response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/")
async def home(user: PageUser) -> Response:
    return RedirectResponse(HOME[user.role], status.HTTP_303_SEE_OTHER)


# --- engineers: fleet, device, gateways ----------------------------------------------------------

def _filter(request: Request) -> FleetFilter:
    q = request.query_params

    def pick(name: str, allowed: tuple[str, ...] | None = None) -> str | None:
        value = (q.get(name) or "").strip()[:64]
        if not value or (allowed is not None and value not in allowed):
            return None
        return value

    return FleetFilter(pick("community"), pick("building"), pick("kind", KINDS), pick("state", STATES), pick("q"))


@router.get("/fleet")
async def fleet_page(request: Request, user: PageUser) -> Response:
    if user.role not in STAFF:
        return _forbidden(request, user)
    flt = _filter(request)
    if flt.community is not None and not user.can_see(flt.community):
        return _not_found(request, user)
    raw_offset = request.query_params.get("offset", "0")
    offset = int(raw_offset) if raw_offset.isdigit() and len(raw_offset) < 7 else 0
    async with app_pool(request).connection() as conn:
        fleet = await load_fleet(conn, user, flt, offset=offset, now=get_clock(request).now())
    template = "partials/fleet_body.html" if request.headers.get("HX-Request") else "fleet.html"
    return render(request, template, user, fleet=fleet, flt=flt, kinds=KINDS, states=STATES)


@router.get("/devices/{device_id}")
async def device_page(request: Request, device_id: int, user: PageUser) -> Response:
    if user.role not in STAFF:
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        device = await load_device(conn, user, device_id, now=get_clock(request).now())
        if device is None:
            return _not_found(request, user)
        values = await load_device_values(conn, device_id, now=get_clock(request).now())
        health = await load_health(conn, device_id, device.kind, now=get_clock(request).now())
        alarms = await device_alarms(conn, device.community, device.code, 20)
        orders = await device_work_orders(conn, device.community, device.code, 20)
        target = await command_target(conn, device_id)
        commands = await device_commands(conn, device_id, 20)
    points = writable_points(known_profiles(), target.profile_id if target else None)
    actions = device_actions(known_profiles(), target.profile_id if target else None)
    queued = request.query_params.get("cmd", "")[:64]
    # the form keeps the point of the command just sent (a second try is usually the same point)
    just_sent = next((c for c in commands if c.command_id == queued), None)
    last_point = just_sent.point if just_sent else ""
    queued = queued if just_sent is not None and just_sent.status in ("pending", "sent") else ""
    charted = chart_metrics(values)
    return render(request, "device.html", user, device=device, values=values, charted=charted, health=health,
                  alarms=alarms, orders=orders, fixed=fixed,
                  chart_metric=default_metric(device.kind, [m.metric for m in charted]), commands=commands,
                  command_points=points, queued=queued, last_point=last_point, command_actions=actions,
                  action_labels={a.name: a.label for a in actions})


def form_value(text: str) -> float | int | bool | str:
    """A command value typed into the device page: a number, ``true``/``false``, or an enum label."""
    text = text.strip()
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


@router.post("/devices/{device_id}/commands")
async def device_command(request: Request, device_id: int, user: PageUser,
                         point: Annotated[str, Form(max_length=64)] = "",
                         value: Annotated[str, Form(max_length=64)] = "",
                         action: Annotated[str, Form(max_length=64)] = "") -> Response:
    """The device page's command form (a write) and action buttons (``action``, e.g. open): the same
    :func:`cloud.ops.fleet.commands.submit` as the API; a refusal is a row of the trail shown on the
    page (no separate error page)."""
    require_same_origin(request)
    if user.role not in STAFF:
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        row = await submit(conn, device_id=device_id, point=action or point, issued_by=user.username,
                           value=form_value(value) if value.strip() else None, now=get_clock(request).now(),
                           action=bool(action))
    if row is None:
        return _not_found(request, user)
    return RedirectResponse(f"/devices/{device_id}?cmd={row.command_id}#commands", status.HTTP_303_SEE_OTHER)


@router.get("/gateways")
async def gateways_page(request: Request, user: PageUser) -> Response:
    if user.role not in STAFF:
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        gateways = await load_gateways(conn, user)
    return render(request, "gateways.html", user, gateways=gateways)


@router.get("/gateways/{gateway_id}")
async def gateway_page(request: Request, gateway_id: int, user: PageUser) -> Response:
    return await _gateway_view(request, user, gateway_id, notice=request.query_params.get("notice", "")[:32])


async def _gateway_view(request: Request, user: User, gateway_id: int, *, new_token: tuple[str, object] | None = None,
                        notice: str = "", status_code: int = 200) -> Response:
    if user.role not in STAFF:
        return _forbidden(request, user)
    if not -2**31 <= gateway_id < 2**31:
        return _not_found(request, user)
    async with app_pool(request).connection() as conn:
        found = await load_gateways(conn, user, gateway_id=gateway_id)
        if not found:
            return _not_found(request, user)
        devices = await gateway_devices(conn, gateway_id)
        incarnations = await load_incarnations(conn, gateway_id)
        creds = await gateway_identity(conn, gateway_id) if user.role is Role.admin else None
    return render(request, "gateway.html", user, status_code, gw=found[0], devices=devices, incarnations=incarnations,
                  creds=creds, new_token=new_token, notice=notice if notice in GATEWAY_NOTICES else "")


GATEWAY_NOTICES = ("revoked", "broker_not_configured", "broker_unavailable")


@router.post("/gateways/{gateway_id}/bootstrap-token")
async def gateway_token(request: Request, gateway_id: int, user: PageUser) -> Response:
    """Admins: a one-time enrolment token, shown once on the page it answers (not in a URL)."""
    require_same_origin(request)
    if user.role is not Role.admin:
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        if await gateway_identity(conn, gateway_id) is None:
            return _not_found(request, user)
        token = await issue_token(conn, gateway_id, created_by=user.username, now=get_clock(request).now())
    return await _gateway_view(request, user, gateway_id, new_token=token)


@router.post("/gateways/{gateway_id}/revoke")
async def gateway_revoke(request: Request, gateway_id: int, user: PageUser) -> Response:
    """Admins: revoke the gateway's broker credentials (the same as the API's revoke)."""
    require_same_origin(request)
    if user.role is not Role.admin:
        return _forbidden(request, user)
    settings = request.app.state.settings
    try:
        files = BrokerFiles.of(settings.broker_passwd_file, settings.broker_acl_file, settings.broker_pid_file)
    except BrokerError:
        files, notice = None, "broker_unavailable"
    else:
        notice = "broker_not_configured"
    if files is not None:
        async with app_pool(request).connection() as conn:
            if await gateway_identity(conn, gateway_id) is None:
                return _not_found(request, user)
            try:
                await revoke_gateway(conn, files, gateway_id, get_clock(request).now(), actor=user.username)
                notice = "revoked"
            except (BrokerError, OSError):
                await conn.rollback()
                notice = "broker_unavailable"
    return RedirectResponse(f"/gateways/{gateway_id}?notice={notice}", status.HTTP_303_SEE_OTHER)


# --- butlers: inbox ------------------------------------------------------------------------------

@router.get("/inbox")
async def inbox_page(request: Request, user: PageUser) -> Response:
    if user.role not in (Role.butler, Role.admin, Role.engineer):
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        butler = await butler_of(conn, user)
        orders = await inbox_orders(conn, user, butler)
        # a full-time butler hands tasks to the community's volunteers from here (issue 18)
        helpers = (await volunteers(conn, butler["community"])
                   if butler is not None and butler["kind"] == "full_time" else [])
        # years of service and the certificates that count, beside the star rule they feed
        service = await profile.read(conn, butler["id"], get_clock(request).now()) if butler is not None else None
    template = "partials/inbox_list.html" if request.headers.get("HX-Request") else "inbox.html"
    return render(request, template, user, butler=butler, orders=orders, actions=ACTIONS, volunteers=helpers,
                  titles=rule_titles(), stars=get_policy(request).stars, service=service,
                  handed=request.query_params.get("handed") is not None, now=get_clock(request).now())


@router.get("/inbox/{work_order_id}/trail")
async def trail_partial(request: Request, work_order_id: int, user: PageUser) -> Response:
    async with app_pool(request).connection() as conn:
        trail = await order_trail(conn, user, work_order_id, pick_lang(request, user.lang))
    if trail is None:
        return _not_found(request, user)
    return render(request, "partials/trail.html", user, trail=trail)


@router.post("/inbox/{work_order_id}/{action}")
async def inbox_action(request: Request, work_order_id: int, action: str, user: PageUser,
                       note: Annotated[str, Form(max_length=2000)] = "",
                       photo: Annotated[UploadFile | None, File()] = None) -> Response:
    if action not in ACTIONS:
        return _not_found(request, user)
    require_transition(request, action)  # the same per-action check as the API's transitions
    data = await photo.read(photos.MAX_BYTES + 1) if photo is not None and photo.filename else b""
    async with app_pool(request).connection() as conn:
        error = await act(conn, user, work_order_id, action, note.strip(), data, _run_dir(request),
                          policy=get_policy(request), now=get_clock(request).now())
    if error == "not_found":
        return _not_found(request, user)
    if request.headers.get("HX-Request"):
        return await inbox_page(request, user) if error is None else Response(error, status.HTTP_409_CONFLICT)
    return RedirectResponse("/inbox", status.HTTP_303_SEE_OTHER)


@router.get("/photos/{community}/{name}")
async def photo_file(request: Request, community: str, name: str, user: PageUser) -> Response:
    if not user.can_see(community):
        return _not_found(request, user)
    path = photos.locate(_run_dir(request), community, name)
    if path is None:
        return _not_found(request, user)
    return FileResponse(path, headers={"Cache-Control": "private, max-age=3600"})


# --- residents: report and rate ------------------------------------------------------------------

@router.get("/resident")
async def resident_page(request: Request, user: PageUser) -> Response:
    if user.role not in (Role.resident, Role.admin):
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        orders = await resident_orders(conn, user)
        buildings = await buildings_of(conn, user)
        devices = await reportable_devices(conn, user)
        recent = await resident_recent(conn, user.id)
    lang = pick_lang(request, user.lang)
    updates = [present(lang, m) for m in recent]  # newest first; the live stream adds on top
    sent = request.query_params.get("sent")
    reopened = request.query_params.get("reopened")
    reopen_after = get_clock(request).now() - get_policy(request).resident_reopen_window
    return render(request, "resident.html", user, orders=orders, buildings=buildings, devices=devices, updates=updates,
                  reopen_after=reopen_after, reopened=reopened if reopened and reopened.isdigit() else None,
                  sent=sent if sent and sent.isdigit() else None, rated=request.query_params.get("rated"),
                  liked=request.query_params.get("liked") == "1")


@router.post("/resident/report")
async def resident_report(request: Request, user: PageUser,
                          text: Annotated[str, Form(min_length=1, max_length=2000)],
                          location: Annotated[str, Form(max_length=200)] = "",
                          building: Annotated[str, Form(max_length=64)] = "",
                          device: Annotated[str, Form(max_length=64)] = "",
                          photo: Annotated[UploadFile | None, File()] = None) -> Response:
    if user.role not in (Role.resident, Role.admin):
        return _forbidden(request, user)
    data = await photo.read(photos.MAX_BYTES + 1) if photo is not None and photo.filename else b""
    async with app_pool(request).connection() as conn:
        result = await report(conn, user, text, location, building or None, device or None, data, _run_dir(request),
                              policy=get_policy(request), now=get_clock(request).now())
    if isinstance(result, str):
        return render(request, "error.html", user, status.HTTP_422_UNPROCESSABLE_ENTITY, message=result)
    return RedirectResponse(f"/resident?sent={result}", status.HTTP_303_SEE_OTHER)


@router.post("/resident/rate/{work_order_id}")
async def resident_rate(request: Request, work_order_id: int, user: PageUser,
                        stars: Annotated[int, Form(ge=1, le=5)],
                        comment: Annotated[str, Form(max_length=1000)] = "") -> Response:
    if user.role not in (Role.resident, Role.admin):
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        error = await rate_order(conn, user, work_order_id, stars, comment, policy=get_policy(request),
                                 now=get_clock(request).now())
    if error == "not_found":
        return _not_found(request, user)
    if error is not None:
        return render(request, "error.html", user, status.HTTP_409_CONFLICT, message=error)
    return RedirectResponse("/resident?rated=1", status.HTTP_303_SEE_OTHER)


@router.post("/resident/reopen/{work_order_id}")
async def resident_reopen(request: Request, work_order_id: int, user: PageUser,
                          reason: Annotated[str, Form(max_length=1000)] = "") -> Response:
    if user.role not in (Role.resident, Role.admin):
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        result = await reopen_order(conn, user, work_order_id, reason, policy=get_policy(request),
                                    now=get_clock(request).now())
    if result == "not_found":
        return _not_found(request, user)
    if isinstance(result, str):
        return render(request, "error.html", user, status.HTTP_409_CONFLICT, message=result)
    return RedirectResponse(f"/resident?reopened={result}", status.HTTP_303_SEE_OTHER)


# --- managers ------------------------------------------------------------------------------------

@router.get("/manager")
async def manager_page(request: Request, user: PageUser) -> Response:
    if user.role not in STAFF:
        return _forbidden(request, user)
    raw_days = request.query_params.get("days", "30")
    days = int(raw_days) if raw_days.isdigit() and 1 <= int(raw_days) <= 366 else 30
    now = get_clock(request).now()
    async with app_pool(request).connection() as conn:
        perf = await load_performance(conn, user, days=days, now=now)
        complaints = await complaint_cycle(conn, user.scope(), now - timedelta(days=days), now)
    top = max(perf.ratings.values()) if perf.ratings else 0
    return render(request, "manager.html", user, perf=perf, top=top, complaints=complaints)


# --- admins: users -------------------------------------------------------------------------------

@router.get("/admin/audit")
async def audit_page(request: Request, user: PageUser) -> Response:
    """Admins: the admin audit log, newest first (the same rows as ``GET /api/v1/audit``), filtered
    by community, action family and actor; times in the chosen community's zone."""
    from cloud.db.audit import entries, families
    from cloud.ops.routing.staff import community_timezone

    if user.role is not Role.admin:
        return _forbidden(request, user)
    picked = {k: (request.query_params.get(k) or None) for k in ("community", "action", "actor")}
    picked = {k: v[:100] if v else None for k, v in picked.items()}
    async with app_pool(request).connection() as conn:
        rows = await entries(conn, limit=200, community=picked["community"], action=picked["action"],
                             actor=picked["actor"])
        communities = await community_codes(conn)
        kinds = await families(conn)
        tz = await community_timezone(conn, picked["community"]) if picked["community"] else None
    return render(request, "audit.html", user, rows=rows, communities=communities, families=kinds, picked=picked,
                  tz=tz)


@router.get("/admin/users")
async def users_page(request: Request, user: PageUser) -> Response:
    from cloud.auth.users import list_users

    if user.role is not Role.admin:
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        users = await list_users(conn, limit=1000)
        communities = await community_codes(conn)
    # least privileged first, and the form's default: a slip must never create an admin
    roles = [Role.resident.value, Role.butler.value, Role.contractor.value, Role.engineer.value, Role.admin.value]
    return render(request, "users.html", user, users=users, roles=roles, communities=communities,
                  error=request.query_params.get("error"), created=request.query_params.get("created"))


@router.post("/admin/users")
async def users_create(request: Request, user: PageUser,
                       username: Annotated[str, Form(max_length=64)],
                       password: Annotated[str, Form(max_length=256)],
                       role: Annotated[str, Form(max_length=16)] = Role.resident.value,
                       display_name: Annotated[str, Form(max_length=100)] = "",
                       communities: Annotated[list[str] | None, Form()] = None) -> Response:
    from urllib.parse import quote

    from cloud.auth.errors import AuthError
    from cloud.auth.users import create_user

    if user.role is not Role.admin:
        return _forbidden(request, user)
    try:
        async with app_pool(request).connection() as conn:
            await create_user(conn, username, password, Role(role), communities or [], display_name=display_name)
    except (AuthError, ValueError) as exc:
        return RedirectResponse(f"/admin/users?error={quote(str(exc)[:200])}", status.HTTP_303_SEE_OTHER)
    return RedirectResponse(f"/admin/users?created={quote(username)}", status.HTTP_303_SEE_OTHER)


@router.post("/admin/users/{user_id}/disable")
async def users_disable(request: Request, user_id: int, user: PageUser,
                        enable: Annotated[str, Form(max_length=5)] = "") -> Response:
    from cloud.auth.errors import UserNotFound
    from cloud.auth.users import update_user

    if user.role is not Role.admin:
        return _forbidden(request, user)
    if user_id == user.id or not -2**63 <= user_id < 2**63:
        return RedirectResponse("/admin/users?error=not+yourself", status.HTTP_303_SEE_OTHER)
    try:
        async with app_pool(request).connection() as conn:
            await update_user(conn, user_id, disabled=enable != "1")
    except UserNotFound:
        return _not_found(request, user)
    return RedirectResponse("/admin/users", status.HTTP_303_SEE_OTHER)
