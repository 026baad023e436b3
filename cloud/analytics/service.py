"""The scheduled analytics job of ``guanjia cloud serve`` (registered in :mod:`cloud.components`).

Every ``interval`` it scores the hours completed since its last round (detections → fleet alarms →
planned work orders); health records are refreshed at most hourly, as they read 30 days per
device. Once a day — and at start when a device kind has no model yet — it retrains the
baselines on the last ``train_days`` of rollups. Rounds that fail (database down) are logged and
retried with :class:`guanjia.core.backoff.Backoff`; the component never takes the service down for an
analytics hiccup, because ingest matters more.

Options (``ctx.config``, see :class:`cloud.runtime.context.CloudConfig`):
``analytics_interval_s`` (900), ``analytics_train_days`` (14),
``analytics_retrain_s`` (86400), ``analytics_data_clock`` (False: score up to the wall clock;
True: up to the newest hourly rollup — for accelerated simulations whose data runs ahead).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from guanjia.core.backoff import Backoff

if TYPE_CHECKING:
    from cloud.runtime.context import Component, ServiceContext
    from guanjia.core.clock import Clock

log = logging.getLogger(__name__)

ROUND_TIMEOUT_S = 600.0


class AnalyticsJob:
    name = "analytics"

    def __init__(self, interval_s: float = 900.0, train_days: int = 14, retrain_s: float = 86_400.0,
                 data_clock: bool = False) -> None:
        self.interval_s = interval_s
        self.train_days = train_days
        self.retrain_s = retrain_s
        self.data_clock = data_clock
        self.last_scored: dt.datetime | None = None
        self.last_trained: dt.datetime | None = None
        self.last_health: dt.datetime | None = None
        self.last_missing_try: dt.datetime | None = None
        self.health_s = max(interval_s, 3600.0)
        self.rounds = 0

    async def _now(self, conn: Any, clock: Clock) -> dt.datetime:
        """The service's clock, or (``data_clock``) the end of the newest rollup hour."""
        if not self.data_clock:
            return clock.now()
        cur = await conn.execute("SELECT max(bucket) FROM telemetry_1h")
        row = await cur.fetchone()
        newest: dt.datetime | None = row[0] if row else None
        return (newest + dt.timedelta(hours=1)) if newest else clock.now()

    async def round(self, ctx: ServiceContext) -> None:
        """One scheduling round: retrain if due, then score."""
        from cloud.analytics import modelstore
        from cloud.analytics.detectors import DETECTORS
        from cloud.analytics.jobs import score, train
        from cloud.ops.model.policy import context_policy

        async with ctx.pool.connection() as conn:
            now = await self._now(conn, ctx.clock)
            missing = [kind for kind, det in DETECTORS.items() if await modelstore.load_model(conn, det.name) is None]
            due = self.last_trained is None or (now - self.last_trained).total_seconds() >= self.retrain_s
            # kinds still without a model (too little history so far) are retried at most hourly
            retry = bool(missing) and (self.last_missing_try is None
                                       or (now - self.last_missing_try).total_seconds() >= 3600.0)
            if retry:
                self.last_missing_try = now
            if retry or due:
                trained = await train(conn, now - dt.timedelta(days=self.train_days), now,
                                      kinds=None if due else missing)
                self.last_trained = now
                if trained:
                    ctx.metrics.counter("guanjia_analytics_models_trained_total",
                                        "model versions trained").inc(len(trained))
            since = self.last_scored or now - dt.timedelta(hours=2)
            health_due = self.last_health is None or (now - self.last_health).total_seconds() >= self.health_s
            result = await score(conn, now, since=since, health=health_due, policy=context_policy(ctx))
            if health_due:
                self.last_health = now
            await conn.commit()
            self.last_scored = now
            self.rounds += 1
            ctx.metrics.counter("guanjia_analytics_detections_total", "anomaly detections raised").inc(
                len(result.detections))
            if result.detections:
                log.info("analytics: %d new detections", len(result.detections))

    async def run(self, ctx: ServiceContext) -> None:
        backoff = Backoff(initial=5.0, cap=300.0)
        while True:
            try:
                async with asyncio.timeout(ROUND_TIMEOUT_S):
                    await self.round(ctx)
                backoff.reset()
                delay = self.interval_s
            except asyncio.CancelledError:
                raise
            except Exception:
                delay = backoff.next_delay()
                log.exception("analytics round failed; retrying in %.0f s", delay)
            await asyncio.sleep(delay)


def components(ctx: ServiceContext) -> list[Component]:
    config = ctx.config
    return [AnalyticsJob(interval_s=config.analytics_interval_s, train_days=config.analytics_train_days,
                         retrain_s=config.analytics_retrain_s, data_clock=config.analytics_data_clock)]
