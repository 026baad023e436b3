"""The API as a service component: uvicorn serving :func:`cloud.api.app.create_app`.

Uvicorn's own signal handling is switched off: the :class:`cloud.service.CloudService` owns
SIGINT/SIGTERM and cancels this component, which then asks uvicorn to finish open requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Generator
from typing import TYPE_CHECKING

import uvicorn

if TYPE_CHECKING:
    from cloud.service import Component, ServiceContext

log = logging.getLogger(__name__)


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


class ApiServer:
    name = "api"

    async def run(self, ctx: ServiceContext) -> None:
        from cloud.api.app import create_app

        app = create_app(ctx.settings, ctx.pool, metrics=ctx.metrics, clock=ctx.clock, policy=ctx.policy)
        config = uvicorn.Config(app, host=ctx.options.api_host, port=ctx.options.api_port, log_level="warning",
                                access_log=False, lifespan="off")
        server = _Server(config)
        task = asyncio.create_task(server.serve())
        try:
            await asyncio.shield(task)
        finally:
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(task, timeout=10)


def components(ctx: ServiceContext) -> list[Component]:
    return [ApiServer()] if ctx.options.api else []
