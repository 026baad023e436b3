"""FastAPI dependencies as ``Annotated`` aliases, declared once (as in the FastAPI template).

* ``PoolDep`` — the app's :class:`AsyncConnectionPool` (``app.state.pool``).
* ``MetricsDep`` — the process's :class:`cloud.runtime.metrics.Metrics` (``app.state.metrics``).
* :func:`read_dependencies` / :func:`admin_dependencies` — router-level guards of the ingest
  routers (telemetry: the device's community; dead letters: admin), kept as defence in depth.
  Who may call what is decided first, for every route, by the policy table
  (:mod:`cloud.auth.policy`) through the app-wide :func:`cloud.auth.deps.authorize`.
* ``ClockDep`` / ``PolicyDep`` — the process's one clock and one work-order policy
  (``app.state.clock`` / ``app.state.policy``): routes never read wall time or policy files themselves.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from psycopg_pool import AsyncConnectionPool

from cloud.auth.deps import (
    AdminUser,
    ButlerUser,
    CurrentUser,
    PageUser,
    ResidentUser,
    StaffUser,
    ensure_community_param,
    ensure_visible,
    require_roles,
    scope_params,
)
from cloud.ops.model.policy import Policy
from cloud.runtime.metrics import Metrics
from guanjia.core.clock import Clock


def get_pool(request: Request) -> AsyncConnectionPool[Any]:
    pool: AsyncConnectionPool[Any] | None = getattr(request.app.state, "pool", None)
    if pool is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "database pool not ready")
    return pool


def get_metrics(request: Request) -> Metrics:
    metrics: Metrics | None = getattr(request.app.state, "metrics", None)
    if metrics is None:
        metrics = Metrics()
        request.app.state.metrics = metrics
    return metrics


def get_clock(request: Request) -> Clock:
    """The process's one clock (``app.state.clock``, set by :func:`cloud.api.app.create_app`)."""
    clock: Clock = request.app.state.clock
    return clock


def get_policy(request: Request) -> Policy:
    """The process's one work-order policy (``app.state.policy``: ``GUANJIA_WO_POLICY`` loaded once)."""
    policy: Policy = request.app.state.policy
    return policy


PoolDep = Annotated[AsyncConnectionPool[Any], Depends(get_pool)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ClockDep = Annotated[Clock, Depends(get_clock)]
PolicyDep = Annotated[Policy, Depends(get_policy)]

def read_dependencies() -> list[Any]:
    """Dependencies every read-only data route requires: a signed-in user whose communities
    include the ``{device_id}`` of the path, if any (WEB's ``device_tenant_guard``)."""
    from cloud.auth.deps import device_tenant_guard

    return [Depends(device_tenant_guard)]


def admin_dependencies() -> list[Any]:
    """Dependencies of operator-only routes (dead letters): the admin role — dead letters span
    every community, so tenant-scoped engineers do not see them."""
    from cloud.auth.roles import Role

    return [Depends(require_roles(Role.admin))]


__all__ = [
    "AdminUser", "ButlerUser", "ClockDep", "CurrentUser", "MetricsDep", "PageUser", "PolicyDep", "PoolDep",
    "ResidentUser", "StaffUser", "admin_dependencies", "ensure_community_param", "ensure_visible", "get_clock",
    "get_metrics", "get_policy", "get_pool",
    "read_dependencies", "require_roles", "scope_params",
]
