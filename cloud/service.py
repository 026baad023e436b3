"""``CloudService``: the one process shape of the cloud — a pool, a TaskGroup, components.

``guanjia cloud serve`` builds it with every registered component (:mod:`cloud.components`),
``guanjia cloud ingest`` with the ingest workers only. Startup order: open the pool (the database
must answer), apply pending migrations (advisory-locked, so several processes may start together),
then start each component as a task in one TaskGroup. A component that fails takes the service
down (and the supervisor restarts it) instead of leaving a half-working process; SIGINT/SIGTERM
cancel every component and the pool closes last.

A component is any object with ``name: str`` and ``async def run(self, ctx: ServiceContext)``
that runs until cancelled; it must clean up in ``finally``/``async with`` (the ingest workers, for
instance, finish their in-flight commit and disconnect so unacknowledged messages are redelivered).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol

from psycopg_pool import AsyncConnectionPool

from cloud.db.migrate import StorageMode, migrate
from cloud.db.pool import open_pool
from cloud.ingest.hooks import IngestHooks
from cloud.ops.model.policy import Policy, load_policy
from cloud.runtime.errors import CloudError
from cloud.runtime.metrics import Metrics
from guanjia.core.clock import Clock, SystemClock
from guanjia.core.settings import Settings

log = logging.getLogger(__name__)


@dataclass(slots=True)
class ServiceOptions:
    workers: int = 1
    api: bool = True
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    group: str = "guanjia-ingest"
    pool_size: int = 8
    migrate: bool = True
    prefer_timescale: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class ServiceContext:
    """What every component gets: settings, the shared pool, metrics, ingest hooks, options, and
    the process's one clock and one work-order policy.

    ``clock`` is where wall time enters the cloud: components, the API and the web pages read
    ``now`` from it and pass it down, so a test (or ``pytest --at``) controls every business time.
    ``policy`` is ``GUANJIA_WO_POLICY`` (or ``options.extra["wo_policy"]``) loaded once at start-up:
    accepting an order through the API, the web inbox or the escalation ticker computes deadlines
    from the same SLA clocks.
    """

    settings: Settings
    pool: AsyncConnectionPool
    metrics: Metrics
    hooks: IngestHooks
    options: ServiceOptions
    mode: StorageMode
    database_url: str
    clock: Clock
    policy: Policy


def service_policy(settings: Settings, options: ServiceOptions) -> Policy:
    """The work-order policy of this process: ``options.extra["wo_policy"]``, else ``GUANJIA_WO_POLICY``."""
    path = options.extra.get("wo_policy") or settings.wo_policy
    return load_policy(path)


class Component(Protocol):
    name: str

    async def run(self, ctx: ServiceContext) -> None: ...


def load_components(ctx: ServiceContext, entries: list[str]) -> list[Component]:
    found: list[Component] = []
    for entry in entries:
        module, func = entry.split(":")
        factory: Callable[[ServiceContext], list[Component]] = getattr(importlib.import_module(module), func)
        found += factory(ctx)
    return found


class CloudService:
    """``async with CloudService(settings, options) as svc: await svc.wait()``."""

    def __init__(self, settings: Settings, options: ServiceOptions | None = None,
                 components: list[str] | None = None, *, clock: Clock | None = None) -> None:
        if not settings.database_url:
            raise CloudError("GUANJIA_DATABASE_URL is not set (a PostgreSQL/TimescaleDB URL)")
        self.settings = settings
        self.options = options or ServiceOptions()
        self.clock: Clock = clock or SystemClock()
        self.policy = service_policy(settings, self.options)  # read once; a bad file fails start-up
        self._entries = components
        self.metrics = Metrics()
        self.hooks = IngestHooks()
        self._stack = contextlib.AsyncExitStack()
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self.ctx: ServiceContext | None = None

    async def __aenter__(self) -> CloudService:
        from cloud.components import COMPONENTS

        url = self.settings.database_url
        assert url is not None
        try:
            if self.options.migrate:
                await asyncio.to_thread(migrate, url, prefer_timescale=self.options.prefer_timescale)
            pool = await self._stack.enter_async_context(
                open_pool(url, min_size=1, max_size=self.options.pool_size, application="guanjia-cloud"))
            async with pool.connection() as conn:
                cur = await conn.execute("SELECT value FROM schema_meta WHERE key = 'storage_mode'")
                row = await cur.fetchone()
            mode: StorageMode = "timescale" if row is not None and row[0] == "timescale" else "plain"
            self.ctx = ServiceContext(self.settings, pool, self.metrics, self.hooks, self.options, mode, url,
                                      clock=self.clock, policy=self.policy)
            components = load_components(self.ctx, self._entries if self._entries is not None else COMPONENTS)
            self._group = await self._stack.enter_async_context(asyncio.TaskGroup())
            for component in components:
                self._tasks.append(self._group.create_task(self._run(component), name=component.name))
        except BaseException:
            await self._stack.aclose()
            raise
        log.info("cloud service started (%s storage): %s", mode, ", ".join(c.name for c in components))
        return self

    async def _run(self, component: Component) -> None:
        assert self.ctx is not None
        await component.run(self.ctx)
        log.info("component %s finished", component.name)

    def stop(self) -> None:
        self._stop.set()

    async def wait(self) -> None:
        """Return when :meth:`stop` is called or SIGINT/SIGTERM arrives (handlers installed here)."""
        loop = asyncio.get_running_loop()
        installed: list[signal.Signals] = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.add_signal_handler(sig, self.stop)
                installed.append(sig)
        try:
            await self._stop.wait()
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        for task in self._tasks:
            task.cancel()
        await self._stack.aclose()
        log.info("cloud service stopped")
