"""The app-state dependencies of every HTTP route, JSON or page, as ``Annotated`` aliases.

* ``PoolDep`` — the app's :class:`AsyncConnectionPool` (``app.state.pool``).
* ``MetricsDep`` — the process's :class:`cloud.runtime.metrics.Metrics` (``app.state.metrics``).
* ``ClockDep`` / ``PolicyDep`` — the process's one clock and one work-order policy
  (``app.state.clock`` / ``app.state.policy``): routes never read wall time or policy files themselves.

They sit below :mod:`cloud.api` and :mod:`cloud.web` so the pages take the same clock and policy
as the JSON routers without importing the api; :mod:`cloud.api.deps` lists them with the auth
dependencies as the API's one dependency module.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from psycopg_pool import AsyncConnectionPool

from cloud.ops.model.policy import Policy
from cloud.runtime.context import EdgeConfigCheck
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
    """The process's one clock (``app.state.clock``, set by :func:`cloud.app.create_app`)."""
    clock: Clock = request.app.state.clock
    return clock


def get_policy(request: Request) -> Policy:
    """The process's one work-order policy (``app.state.policy``: ``GUANJIA_WO_POLICY`` loaded once)."""
    policy: Policy = request.app.state.policy
    return policy


def get_edge_config(request: Request) -> EdgeConfigCheck:
    """The edge's bundle validator (``app.state.edge_config``, injected by :mod:`guanjia.app`);
    503 in a process built without it: the cloud never stores a bundle it could not check."""
    check: EdgeConfigCheck | None = getattr(request.app.state, "edge_config", None)
    if check is None:
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                            "this process cannot validate edge configuration (started without the edge validators)")
    return check


PoolDep = Annotated[AsyncConnectionPool[Any], Depends(get_pool)]

MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ClockDep = Annotated[Clock, Depends(get_clock)]
PolicyDep = Annotated[Policy, Depends(get_policy)]
