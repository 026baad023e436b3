"""``CloudService``: the one process shape of the cloud — a pool, a TaskGroup, components.

``guanjia cloud serve`` builds it with every registered component (:mod:`cloud.components`),
``guanjia cloud ingest`` with the ingest workers only. Startup order: open the pool (the database
must answer), apply pending migrations (advisory-locked, so several processes may start together),
then start each component as a task in one TaskGroup. A component that fails takes the service
down (and the supervisor restarts it) instead of leaving a half-working process; SIGINT/SIGTERM
cancel every component and the pool closes last.

What a component is, the context it gets and the one typed :class:`CloudConfig` of the process
live in :mod:`cloud.runtime.context`, at the bottom of the cloud, so the parts that contribute
components never import this assembly. The factories are real imports
(:data:`cloud.components.COMPONENTS`); nothing is looked up by name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from types import TracebackType

from cloud.components import COMPONENTS
from cloud.db.migrate import migrate, storage_mode_async
from cloud.db.pool import open_pool
from cloud.ops.model.policy import Policy, load_policy
from cloud.runtime.context import CloudConfig, Component, ComponentFactory, EdgeConfigCheck, ServiceContext
from cloud.runtime.hooks import IngestHooks
from cloud.runtime.metrics import Metrics
from guanjia.core.clock import Clock, SystemClock
from guanjia.core.settings import Settings

log = logging.getLogger(__name__)

STOP_REPORT_S = 10.0
"""After this long, a stop that has not finished logs what still runs (see ``_report_slow_stop``)."""


def service_policy(config: CloudConfig) -> Policy:
    """The work-order policy of this process: ``config.wo_policy`` (``GUANJIA_WO_POLICY``)."""
    return load_policy(config.wo_policy)


def load_components(ctx: ServiceContext, factories: list[ComponentFactory]) -> list[Component]:
    found: list[Component] = []
    for factory in factories:
        found += factory(ctx)
    return found


class CloudService:
    """``async with CloudService(settings, config) as svc: await svc.wait()``.

    ``config`` defaults to :meth:`CloudConfig.from_settings` of ``settings`` (which refuses a
    missing database URL); ``components`` to every registered factory."""

    def __init__(self, settings: Settings, config: CloudConfig | None = None,
                 components: list[ComponentFactory] | None = None, *, clock: Clock | None = None,
                 edge_config: EdgeConfigCheck | None = None) -> None:
        self.settings = settings
        self.config = config or CloudConfig.from_settings(settings)
        self.clock: Clock = clock or SystemClock()
        self.policy = service_policy(self.config)  # read once; a bad file fails start-up
        self.edge_config = edge_config
        self._factories = components
        self.metrics = Metrics()
        self.hooks = IngestHooks()
        self._stack = contextlib.AsyncExitStack()
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self.ctx: ServiceContext | None = None

    async def __aenter__(self) -> CloudService:
        url = self.config.database_url
        try:
            if self.config.migrate:
                await asyncio.to_thread(migrate, url, prefer_timescale=self.config.prefer_timescale)
            pool = await self._stack.enter_async_context(
                open_pool(url, min_size=1, max_size=self.config.pool_size, application="guanjia-cloud"))
            async with pool.connection() as conn:
                mode = await storage_mode_async(conn)
            self.ctx = ServiceContext(self.settings, pool, self.metrics, self.hooks, self.config, mode,
                                      clock=self.clock, policy=self.policy, edge_config=self.edge_config)
            components = load_components(self.ctx, self._factories if self._factories is not None else COMPONENTS)
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
        watchdog = asyncio.get_running_loop().create_task(self._report_slow_stop(), name="stop-watchdog")
        try:
            await self._stack.aclose()
        finally:
            watchdog.cancel()
        log.info("cloud service stopped")

    async def _report_slow_stop(self, after_s: float = STOP_REPORT_S) -> None:
        """Name what still runs ``after_s`` after a stop was asked for, with its stack.

        A component must end promptly when cancelled; one that does not holds the whole process
        past its supervisor's grace period (and is then killed mid-write). Logging the stuck task
        and where it waits turns that from a mystery into a line to fix."""
        await asyncio.sleep(after_s)
        current = asyncio.current_task()
        for task in asyncio.all_tasks():
            if task is current or task.done():
                continue
            frames = task.get_stack(limit=8)
            where = " <- ".join(f"{f.f_code.co_filename.rsplit('/', 2)[-1]}:{f.f_lineno} {f.f_code.co_name}"
                                for f in reversed(frames))
            log.warning("still running %.0f s after stop: task %s at %s", after_s, task.get_name(), where or "?")
