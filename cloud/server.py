"""The API as a service component: uvicorn serving :func:`cloud.app.create_app`.

Uvicorn's own signal handling is switched off: the :class:`cloud.service.CloudService` owns
SIGINT/SIGTERM and cancels this component, which then asks uvicorn to finish open requests.

The API has a connection pool of its own, with a checkout timeout of
:data:`cloud.db.pool.REQUEST_CHECKOUT_TIMEOUT_S`: during a database outage a request answers
503 within 2 s instead of waiting the 30 s the ingest workers' pool allows, and a burst of HTTP
traffic cannot starve the workers of connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator
from typing import Any

import uvicorn

from cloud.runtime.context import Component, ServiceContext

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ApiServer:
    name = "api"

    async def run(self, ctx: ServiceContext) -> None:
        from cloud.app import create_app
        from cloud.db.pool import REQUEST_CHECKOUT_TIMEOUT_S, open_pool
        from cloud.ops.model.policy import context_policy

        async with open_pool(ctx.database_url, min_size=1, max_size=ctx.config.pool_size, application="guanjia-api",
                             wait=False, timeout=REQUEST_CHECKOUT_TIMEOUT_S) as pool:
            await self._serve(create_app(ctx.settings, pool, metrics=ctx.metrics, clock=ctx.clock,
                                         policy=context_policy(ctx), edge_config=ctx.edge_config), ctx)

    async def _serve(self, app: Any, ctx: ServiceContext) -> None:
        config = uvicorn.Config(app, host=ctx.config.api_host, port=ctx.config.api_port, log_level="warning",
                                access_log=False, lifespan="off",
                                # X-Forwarded-For is believed only from GUANJIA_TRUSTED_PROXIES, by
                                # cloud.auth.service.client_address: uvicorn must not rewrite the peer
                                proxy_headers=False)
        server = _Server(config)
        task = asyncio.create_task(server.serve())
        try:
            await asyncio.shield(task)
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=10)


METRICS_CONTENT_TYPE = b"text/plain; version=0.0.4; charset=utf-8"


class MetricsServer:
    """``GET /metrics`` (and ``GET /healthz``) of a process without the API: ``guanjia cloud ingest``.

    Why not the FastAPI app: an ingest-only process has no secret, no sessions and no pages, and
    its whole HTTP surface is two public read-only routes (already in :data:`cloud.auth.policy.POLICY`,
    the same rows as the API's). A bare ASGI callable on the same uvicorn keeps HTTP parsing in a
    kept library and answers every other path 404 and every other method 405 — no input gives a 500.
    """

    name = "metrics"

    async def run(self, ctx: ServiceContext) -> None:
        metrics = ctx.metrics

        async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return
            path, method = scope.get("path", ""), scope.get("method", "")
            if path not in ("/metrics", "/healthz"):
                status, body, ctype = 404, b"not found\n", b"text/plain; charset=utf-8"
            elif method not in ("GET", "HEAD"):
                status, body, ctype = 405, b"method not allowed\n", b"text/plain; charset=utf-8"
            elif path == "/healthz":
                status, body, ctype = 200, b'{"status": "ok"}', b"application/json"
            else:
                status, body, ctype = 200, metrics.render().encode(), METRICS_CONTENT_TYPE
            headers = [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]
            if status == 405:
                headers.append((b"allow", b"GET, HEAD"))
            await send({"type": "http.response.start", "status": status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})

        config = uvicorn.Config(app, host=ctx.config.metrics_host, port=ctx.config.metrics_port,
                                log_level="warning", access_log=False, lifespan="off", proxy_headers=False)
        server = _Server(config)
        task = asyncio.create_task(server.serve())
        try:
            await asyncio.shield(task)
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=10)


def components(ctx: ServiceContext) -> list[Component]:
    if ctx.config.api:
        return [ApiServer()]
    return [MetricsServer()] if ctx.config.metrics_port else []
