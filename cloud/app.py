"""``create_app(settings, pool)``: the cloud's FastAPI application.

Seams for the other cloud parts:

* **Routers** — import the router and add it to :data:`ROUTERS` with the dependency list it
  needs: ``"public"``, ``"read"`` or ``"admin"`` (see :mod:`cloud.api.deps`), or ``"self"`` for
  routers that handle auth themselves. Real imports, not ``"module:router"`` strings: a missing
  or renamed router is an import error (and a ``mypy``/``lint-imports`` failure), never a part of
  the API silently skipped at start-up. The web pages' router is included here too:
  ``create_app`` is the assembly of the HTTP side: it sits above both ``cloud.api`` and
  ``cloud.web`` (independent siblings) in the cloud's layers, so it may import both.
* **State** — ``app.state.settings``, ``app.state.pool``, ``app.state.metrics`` (the process's
  metrics, shared with the ingest workers when ``guanjia cloud serve`` runs both),
  ``app.state.clock`` and ``app.state.policy`` (the service's one clock and work-order policy).
* **Errors** — one JSON shape for every error, see :mod:`cloud.api.errors` (the HTML error page
  for the pages).
* **Authorization** — :func:`cloud.auth.deps.authorize` is an app-wide dependency: every route is
  looked up in the policy table :data:`cloud.auth.policy.POLICY` before its handler runs. A route
  without a row stops the app from being built (:class:`PolicyGap`), so a new router cannot ship
  unguarded.
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.api import errors
from cloud.api.deps import admin_dependencies, read_dependencies
from cloud.api.routers import (
    alarms,
    analytics,
    audit,
    auth,
    commands,
    complaints,
    dashboard,
    deadletter,
    device_admin,
    devices,
    gateways,
    health,
    inbox,
    inspections,
    maintenance,
    people_admin,
    points,
    provisioning,
    registry_admin,
    reports,
    resident,
    telemetry,
    users,
    workorders,
)
from cloud.auth.deps import authorize, build_auth_state
from cloud.auth.policy import missing_rules
from cloud.ops.model.policy import Policy, load_policy
from cloud.runtime.metrics import Metrics
from cloud.web import admin, checklist, pages, rounds
from guanjia.core.clock import Clock, SystemClock
from guanjia.core.settings import Settings

Guard = Literal["public", "read", "admin", "self"]

ROUTERS: list[tuple[APIRouter, Guard]] = [
    (health.router, "public"),
    (deadletter.router, "admin"),
    (telemetry.router, "read"),
    (auth.router, "self"),
    (users.router, "self"),
    (audit.router, "self"),
    (devices.router, "self"),
    (device_admin.router, "self"),
    (commands.router, "self"),
    (dashboard.router, "self"),
    (gateways.router, "self"),
    (provisioning.router, "self"),
    (registry_admin.router, "self"),
    (people_admin.router, "self"),
    (pages.router, "self"),
    (admin.router, "self"),
    (rounds.router, "self"),
    (checklist.router, "self"),
    (alarms.router, "self"),
    (workorders.router, "self"),
    (maintenance.router, "self"),
    (inspections.router, "self"),
    (reports.router, "self"),
    (inbox.router, "self"),
    (resident.router, "self"),
    (complaints.router, "self"),
    (points.router, "self"),
    (analytics.router, "self"),
]


class PolicyGap(RuntimeError):
    """A route of the app has no row in :data:`cloud.auth.policy.POLICY`."""


def route_list(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every HTTP route, those of included routers too (FastAPI ≥ 0.16x keeps
    them behind objects exposing ``effective_route_contexts``); HEAD and OPTIONS left out."""
    out: set[tuple[str, str]] = set()
    for route in app.routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for ctx in contexts:
            methods = getattr(ctx, "methods", None)
            path = getattr(ctx, "path", None)
            if methods and path:
                out.update((m, str(path)) for m in set(methods) - {"HEAD", "OPTIONS"})
    return sorted(out)


def create_app(settings: Settings, pool: AsyncConnectionPool[Any] | None, *, metrics: Metrics | None = None,
               auth: bool = True, clock: Clock | None = None, policy: Policy | None = None) -> FastAPI:
    """The app; ``auth=False`` leaves every route unguarded (tests of storage, benchmarks).

    ``clock`` and ``policy`` are the service's (``ServiceContext``); standalone (tests, benches) the
    app makes its own: the system clock and ``settings.wo_policy`` loaded once here."""
    app = FastAPI(title="guanjia cloud", version="1", docs_url="/api/docs", openapi_url="/api/openapi.json",
                  dependencies=[Depends(authorize)] if auth else None)
    app.state.settings = settings
    app.state.pool = pool
    app.state.metrics = metrics or Metrics()
    app.state.clock = clock or SystemClock()
    app.state.policy = policy or load_policy(settings.wo_policy)
    if auth:  # a missing or weak secret is a startup error naming GUANJIA_SECRET_KEY, not a 500 later
        app.state.auth = build_auth_state(settings, app.state.clock)
    errors.install(app)
    guards: dict[Guard, list[Any]] = {
        "public": [], "self": [],
        "read": read_dependencies() if auth else [],
        "admin": admin_dependencies() if auth else [],
    }
    for router, guard in ROUTERS:
        app.include_router(router, dependencies=guards[guard],
                           responses=errors.ERROR_RESPONSES if guard != "public" else None)
    if auth and (gaps := missing_rules(route_list(app))):
        raise PolicyGap("routes without an authorization rule in cloud/auth/policy.py: "
                        + ", ".join(f"{m} {p}" for m, p in gaps))
    return app
