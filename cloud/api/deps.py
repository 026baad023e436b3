"""FastAPI dependencies as ``Annotated`` aliases, listed in one module for the routers (as in the FastAPI template).

* ``PoolDep``, ``MetricsDep``, ``ClockDep``, ``PolicyDep`` — the app-state dependencies, defined in
  :mod:`cloud.http.deps` (below both the api and the web, which share them).
* :func:`read_dependencies` / :func:`admin_dependencies` — router-level guards of the ingest
  routers (telemetry: the device's community; dead letters: admin), kept as defence in depth.
  Who may call what is decided first, for every route, by the policy table
  (:mod:`cloud.auth.policy`) through the app-wide :func:`cloud.auth.deps.authorize`.
"""

from __future__ import annotations

from typing import Any

from fastapi import Depends

from cloud.auth.deps import (
    AdminUser,
    ButlerUser,
    ContractorUser,
    CurrentUser,
    FieldUser,
    PageUser,
    ResidentUser,
    StaffUser,
    ensure_community_param,
    ensure_visible,
    require_roles,
    scope_params,
)
from cloud.http.deps import ClockDep, MetricsDep, PolicyDep, PoolDep, get_clock, get_metrics, get_policy, get_pool


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
    "AdminUser", "ButlerUser", "ClockDep", "ContractorUser", "CurrentUser", "FieldUser", "MetricsDep", "PageUser",
    "PolicyDep", "PoolDep",
    "ResidentUser", "StaffUser", "admin_dependencies", "ensure_community_param", "ensure_visible", "get_clock",
    "get_metrics", "get_policy", "get_pool",
    "read_dependencies", "require_roles", "scope_params",
]
