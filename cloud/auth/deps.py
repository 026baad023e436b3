"""FastAPI dependencies of the auth layer, re-exported by :mod:`cloud.api.deps`.

Use them as ``Annotated`` aliases in route signatures::

    from cloud.api.deps import CurrentUser, StaffUser, require_roles, ensure_visible

    @router.get("/things/{id}")
    async def get_thing(id: int, user: CurrentUser, pool: PoolDep) -> Thing:
        thing = await load(pool, id)
        ensure_visible(user, thing.community)   # 404 when another tenant's
        ...

* :data:`CurrentUser` — any signed-in user (Bearer token, or the web session cookie); 401 otherwise.
* :func:`require_roles` — ``Annotated[User, Depends(require_roles(Role.butler))]``; 403 otherwise.
  Ready-made: :data:`AdminUser`, :data:`StaffUser` (admin, engineer), :data:`ButlerUser`
  (butler, plus admin/engineer who may act for them), :data:`ResidentUser`.
* :func:`ensure_visible` / :func:`scope_params` — tenant checks. Another community's resource is
  answered with **404**, never 403, so ids of other tenants cannot be probed.
* :data:`PageUser` — for HTML pages: redirects (303) to the login page instead of answering 401.
* :func:`device_tenant_guard` — a router-level guard for ``{device_id}`` routes.

A cookie-authenticated unsafe request (POST/PUT/PATCH/DELETE) must carry the session's CSRF
token in ``X-CSRF-Token`` (htmx pages send it) or a ``csrf_token`` form field.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlencode, urlsplit

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from cloud.auth.policy import Scope, Subject, may_transition, rule_for, subject_of
from cloud.auth.ratelimit import LoginLimiter
from cloud.auth.roles import Role
from cloud.auth.service import AuthState, client_address
from cloud.auth.tenancy import (
    ORDER_ID_PARAMS,
    TENANT_ID_PARAMS,
    ButlerRecord,
    as_id,
    butler_record,
    communities_of,
    contractor_of,
    order_parties,
    reported_by,
)
from cloud.auth.tokens import TokenInvalid, TokenService
from cloud.auth.users import User, get_user, scope_params, session_revoked
from guanjia.core.clock import Clock
from guanjia.core.settings import Settings

SESSION_COOKIE = "guanjia_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False,
                                     description="OAuth2 password flow; access tokens last 15 minutes.")


def build_auth_state(settings: Settings, clock: Clock) -> AuthState:
    return AuthState(TokenService(settings.require_secret(), clock=clock), LoginLimiter(),
                     secure_cookies=settings.mode == "production", proxies=settings.proxy_networks())


def auth_state(request: Request) -> AuthState:
    """The app's :class:`AuthState`, created on first use from ``app.state.settings``."""
    state: AuthState | None = getattr(request.app.state, "auth", None)
    if state is None:
        settings = getattr(request.app.state, "settings", None) or Settings()
        state = build_auth_state(settings, request.app.state.clock)
        request.app.state.auth = state
    return state


def client_ip(request: Request) -> str:
    """The client address for login limits: the TCP peer, or — only when that peer is a trusted
    proxy (``GUANJIA_TRUSTED_PROXIES``) — the client it forwards for (see
    :func:`cloud.auth.service.client_address`). Uvicorn's own proxy-header handling is off.
    Here, not in a router, because the API's token route and the login page both limit by it."""
    return client_address(request.client.host if request.client else None,
                          request.headers.get("x-forwarded-for"), auth_state(request).proxies)


def app_pool(request: Request) -> AsyncConnectionPool[Any]:
    pool: AsyncConnectionPool[Any] | None = getattr(request.app.state, "pool", None)
    if pool is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "database pool not ready")
    return pool


AuthStateDep = Annotated[AuthState, Depends(auth_state)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


async def _resolve(request: Request, bearer: str | None,
                   conn: AsyncConnection[Any] | None = None) -> tuple[User, str | None]:
    """The user of this request and the session ``jti`` when authenticated by cookie.

    Resolved once per request (the policy guard runs first; the handlers' own dependencies then
    reuse what it found). A session cookie must also not have been ended by ``/logout``: the
    token is valid for 12 h, so logout is remembered server-side (``revoked_sessions``)."""
    cached: User | None = getattr(request.state, "user", None)
    if cached is not None:
        return cached, getattr(request.state, "session_jti", None)
    auth = auth_state(request)
    tokens: TokenService = auth.tokens
    session_jti: str | None = None
    if bearer:
        try:
            claims = tokens.decode(bearer, "access")
        except TokenInvalid as exc:
            raise _unauthorized("invalid or expired access token") from exc
    else:
        cookie = request.cookies.get(SESSION_COOKIE)
        if not cookie:
            raise _unauthorized("not authenticated")
        try:
            claims = tokens.decode(cookie, "session")
        except TokenInvalid as exc:
            raise _unauthorized("invalid or expired session") from exc
        session_jti = claims.jti
    if conn is None:
        async with app_pool(request).connection() as own:
            user = await _load_user(own, claims.user_id, session_jti)
    else:
        user = await _load_user(conn, claims.user_id, session_jti)
    if user is None or user.disabled or user.token_version != claims.version:
        raise _unauthorized("token revoked")
    request.state.user = user
    request.state.session_jti = session_jti
    return user, session_jti


async def _load_user(conn: AsyncConnection[Any], user_id: int, session_jti: str | None) -> User | None:
    user = await get_user(conn, user_id)
    if session_jti is not None and user is not None and await session_revoked(conn, session_jti):
        raise _unauthorized("session ended (logged out)")
    return user


async def _check_csrf(request: Request, session_jti: str | None) -> None:
    if session_jti is None or request.method in _SAFE_METHODS:
        return
    presented = request.headers.get(CSRF_HEADER)
    if presented is None and request.headers.get("content-type", "").startswith(
            ("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        presented = value if isinstance(value, str) else None
    if not auth_state(request).tokens.check_csrf(session_jti, presented):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "missing or wrong CSRF token")


def same_origin(request: Request) -> bool:
    """Whether a state-changing request without a CSRF token (login, logout) comes from our own
    pages: its ``Origin`` (else ``Referer``) must name this host. Browsers send ``Origin`` on every
    cross-site POST, so a forged login form on another site is refused; a request with neither
    header (curl, scripts) is not a browser and cannot carry a victim's cookies anyway."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True
    if source == "null":  # sandboxed frames, data: URLs
        return False
    host = request.headers.get("host", "")
    return bool(host) and urlsplit(source).netloc.lower() == host.lower()


def require_same_origin(request: Request) -> None:
    if not same_origin(request):
        raise HTTPException(status.HTTP_403_FORBIDDEN, "cross-origin request refused")


async def current_user(request: Request, token: Annotated[str | None, Depends(bearer_scheme)]) -> User:
    user, session_jti = await _resolve(request, token)
    await _check_csrf(request, session_jti)
    return user


CurrentUser = Annotated[User, Depends(current_user)]


def require_roles(*roles: Role) -> Callable[..., Awaitable[User]]:
    """A dependency that lets only users with one of ``roles`` through (403 for others)."""
    allowed = frozenset(roles)
    names = ", ".join(sorted(r.value for r in allowed))

    async def _dep(user: CurrentUser) -> User:
        if user.role not in allowed:
            raise HTTPException(status.HTTP_403_FORBIDDEN, f"needs role {names}")
        return user

    _dep.__name__ = f"require_{'_'.join(sorted(r.value for r in allowed))}"
    return _dep


AdminUser = Annotated[User, Depends(require_roles(Role.admin))]
StaffUser = Annotated[User, Depends(require_roles(Role.admin, Role.engineer))]
ButlerUser = Annotated[User, Depends(require_roles(Role.butler, Role.admin, Role.engineer))]
ResidentUser = Annotated[User, Depends(require_roles(Role.resident, Role.admin))]
#: who moves work orders: butlers and staff, and contractors (on their company's orders, per the policy)
FieldUser = Annotated[User, Depends(require_roles(Role.butler, Role.admin, Role.engineer, Role.contractor))]
ContractorUser = Annotated[User, Depends(require_roles(Role.contractor))]


def ensure_visible(user: User, community: str | None) -> None:
    """404 unless ``user`` may see ``community`` (used after loading a resource by id)."""
    if not user.can_see(community):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "not found")


def ensure_community_param(user: User, community: str | None) -> None:
    """For list endpoints filtered by ``?community=``: asking for a foreign one is a 404 too."""
    if community is not None:
        ensure_visible(user, community)


async def device_tenant_guard(request: Request, user: CurrentUser) -> User:
    """Route-level guard for routers keyed by ``{device_id}`` that do not check tenants
    themselves (the ingest telemetry router): another community's device is a 404."""
    raw = request.path_params.get("device_id")
    if raw is None or user.is_admin:
        return user
    try:
        device_id = int(raw)
    except (TypeError, ValueError):
        return user  # path validation answers 422
    async with app_pool(request).connection() as conn:
        cur = await conn.execute(
            "SELECT c.code FROM devices d JOIN communities c ON c.id = d.community_id WHERE d.id = %s",
            (device_id,))
        row = await cur.fetchone()
    ensure_visible(user, row[0] if row else None)
    return user


def _login_redirect(request: Request, exc: HTTPException) -> HTTPException:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    # a 303 with Location passes through the API's error handler unchanged: the browser follows it
    # to the login page
    return HTTPException(status.HTTP_303_SEE_OTHER, "login required",
                         headers={"Location": "/login?" + urlencode({"next": target})})


async def page_user(request: Request) -> User:
    """Like :data:`CurrentUser` for HTML pages: a missing/expired session redirects to login."""
    try:
        user, session_jti = await _resolve(request, None)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            raise _login_redirect(request, exc) from exc
        raise
    await _check_csrf(request, session_jti)
    return user


# --- the policy guard: one dependency in front of every route ---------------------------------

@dataclass(frozen=True, slots=True)
class Principal:
    """The caller as the policy sees them: the user, their subject, their butler record."""

    user: User
    subject: Subject
    butler: ButlerRecord | None
    contractor: int | None = None
    """A contractor user's company: they reach the orders assigned to its field staff only."""


def _bearer(request: Request) -> str | None:
    scheme, _, value = request.headers.get("authorization", "").partition(" ")
    return value.strip() or None if scheme.lower() == "bearer" else None


def _route_of(request: Request) -> tuple[str, str]:
    route = request.scope.get("route")
    return request.method, str(getattr(route, "path", request.url.path))


def _forbidden(message: str) -> HTTPException:
    return HTTPException(status.HTTP_403_FORBIDDEN, message)


def _not_found() -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, "not found")


async def authorize(request: Request) -> None:
    """The policy table enforced for every route (installed app-wide by ``create_app``).

    Order: look the route up (no row → 403, fail closed), then sign-in (401 / login redirect),
    CSRF for cookie requests, the subject (403), the tenancy scope of every id in the path and
    of ``?community=`` / ``?butler_id=`` (404). Handlers run only after all of it."""
    method, path = _route_of(request)
    rule = rule_for(method, path)
    if rule is None:
        raise _forbidden(f"no authorization rule for {method} {path}")
    if rule.scope is Scope.public:
        return
    async with app_pool(request).connection() as conn:  # one checkout for the whole decision
        try:
            # pages take the session cookie only, as before; the API a bearer token or the cookie
            bearer = _bearer(request) if path.startswith("/api/") else None
            user, session_jti = await _resolve(request, bearer, conn)
        except HTTPException as exc:
            if exc.status_code == status.HTTP_401_UNAUTHORIZED and not path.startswith("/api/"):
                raise _login_redirect(request, exc) from exc
            raise
        await _check_csrf(request, session_jti)
        butler = await butler_record(conn, user.id) if user.role is Role.butler else None
        contractor = await contractor_of(conn, user.id) if user.role is Role.contractor else None
        principal = Principal(user, subject_of(user.role, butler is not None), butler, contractor)
        request.state.principal = principal
        if principal.subject not in rule.subjects:
            raise _forbidden(f"{rule.action} is not allowed for {principal.subject.value}")
        if rule.scope is Scope.any or user.is_admin:
            return
        await _check_tenancy(conn, request, principal, rule.scope)


async def _check_tenancy(conn: AsyncConnection[Any], request: Request, principal: Principal, scope: Scope) -> None:
    user = principal.user
    named: dict[str, object] = {**request.query_params, **request.path_params}
    community = named.get("community")
    if community is not None and not user.can_see(str(community)):
        raise _not_found()
    for param in TENANT_ID_PARAMS & named.keys():
        resource_id = as_id(named[param])
        if resource_id is None:
            continue  # not an id: the handler's validation answers 422
        if scope is Scope.assignment and param in ORDER_ID_PARAMS:
            if not await may_reach_order(conn, principal, resource_id):
                raise _not_found()
            continue
        communities = await communities_of(conn, param, resource_id)
        if not any(user.can_see(c) for c in communities):
            raise _not_found()


async def may_reach_order(conn: AsyncConnection[Any], principal: Principal, wo_id: int) -> bool:
    """The :attr:`Scope.assignment` rule for one work order."""
    parties = await order_parties(conn, wo_id)
    user = principal.user
    if parties is None or not user.can_see(parties.community):
        return False
    if principal.subject in (Subject.admin, Subject.engineer):
        return True
    if principal.subject is Subject.butler and principal.butler is not None:
        return principal.butler.leads or parties.assignee_id == principal.butler.id
    if principal.subject is Subject.resident:
        return await reported_by(conn, wo_id, user.id)
    if principal.subject is Subject.contractor:
        return principal.contractor is not None and parties.contractor_id == principal.contractor
    return False


def principal_of(request: Request) -> Principal:
    """The :class:`Principal` the guard established for this request."""
    principal: Principal | None = getattr(request.state, "principal", None)
    if principal is None:  # only when the app was built without the guard (auth=False)
        raise _forbidden("no authorization decision for this request")
    return principal


def require_transition(request: Request, action: str) -> Principal:
    """The one check of a work-order action, called by the API router and the web inbox alike:
    403 unless the policy's :data:`~cloud.auth.policy.TRANSITIONS` lets the caller take it."""
    principal = principal_of(request)
    if not may_transition(principal.subject, action):
        raise _forbidden(f"work_orders.{action} is not allowed for {principal.subject.value}")
    return principal


PageUser = Annotated[User, Depends(page_user)]

__all__ = [
    "CSRF_FIELD", "CSRF_HEADER", "SESSION_COOKIE", "AdminUser", "AuthStateDep", "ButlerUser", "CurrentUser",
    "LoginLimiter", "PageUser", "Principal", "ResidentUser", "StaffUser", "auth_state", "authorize",
    "bearer_scheme", "build_auth_state", "current_user", "device_tenant_guard", "ensure_community_param",
    "ensure_visible", "may_reach_order", "page_user", "principal_of", "require_roles", "require_same_origin",
    "require_transition", "same_origin", "scope_params",
]
