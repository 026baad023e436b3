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
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from psycopg_pool import AsyncConnectionPool

from cloud.auth.ratelimit import LoginLimiter
from cloud.auth.roles import Role
from cloud.auth.service import AuthState
from cloud.auth.tokens import TokenInvalid, TokenService
from cloud.auth.users import User, get_user, scope_params
from guanjia.clock import Clock
from guanjia.settings import Settings

SESSION_COOKIE = "guanjia_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

bearer_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False,
                                     description="OAuth2 password flow; access tokens last 15 minutes.")


def build_auth_state(settings: Settings, clock: Clock) -> AuthState:
    secret = settings.secret_key
    if secret is None:  # Settings refuses this outside demo/test, so this is a programming error
        raise RuntimeError("GUANJIA_SECRET_KEY is not set")
    return AuthState(TokenService(secret, clock=clock), LoginLimiter(), secure_cookies=settings.mode == "production")


def auth_state(request: Request) -> AuthState:
    """The app's :class:`AuthState`, created on first use from ``app.state.settings``."""
    state: AuthState | None = getattr(request.app.state, "auth", None)
    if state is None:
        settings = getattr(request.app.state, "settings", None) or Settings()
        state = build_auth_state(settings, request.app.state.clock)
        request.app.state.auth = state
    return state


def app_pool(request: Request) -> AsyncConnectionPool[Any]:
    pool: AsyncConnectionPool[Any] | None = getattr(request.app.state, "pool", None)
    if pool is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "database pool not ready")
    return pool


AuthStateDep = Annotated[AuthState, Depends(auth_state)]


def _unauthorized(message: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, message, headers={"WWW-Authenticate": "Bearer"})


async def _resolve(request: Request, bearer: str | None) -> tuple[User, str | None]:
    """The user of this request and the session ``jti`` when authenticated by cookie."""
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
    pool = app_pool(request)
    async with pool.connection() as conn:
        user = await get_user(conn, claims.user_id)
    if user is None or user.disabled or user.token_version != claims.version:
        raise _unauthorized("token revoked")
    request.state.user = user
    request.state.session_jti = session_jti
    return user, session_jti


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


async def page_user(request: Request) -> User:
    """Like :data:`CurrentUser` for HTML pages: a missing/expired session redirects to login."""
    try:
        user, session_jti = await _resolve(request, None)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_401_UNAUTHORIZED:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            # a 303 with Location passes through the API's error handler unchanged: the browser
            # follows it to the login page
            raise HTTPException(status.HTTP_303_SEE_OTHER, "login required",
                                headers={"Location": "/login?" + urlencode({"next": target})}) from exc
        raise
    await _check_csrf(request, session_jti)
    return user


PageUser = Annotated[User, Depends(page_user)]

__all__ = [
    "CSRF_FIELD", "CSRF_HEADER", "SESSION_COOKIE", "AdminUser", "AuthStateDep", "ButlerUser",
    "CurrentUser", "LoginLimiter", "PageUser", "ResidentUser", "StaffUser",
    "auth_state", "bearer_scheme", "build_auth_state", "current_user", "device_tenant_guard", "ensure_community_param",
    "ensure_visible", "page_user", "require_roles", "scope_params",
]
