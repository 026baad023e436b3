"""Storage upkeep as a service component: partitions ahead, retention, rollup refresh.

Runs in every ``guanjia cloud serve`` process; the work is guarded by advisory locks so several
processes do not duplicate it. Intervals are short for the rollups (the dashboard's 1-minute
chart lags at most ``refresh_interval``) and long for DDL (partitions are made days ahead).
Database outages are logged and retried with :class:`guanjia.core.backoff.Backoff`, never fatal.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cloud.db import partitions, rollups
from cloud.runtime.context import Component, ServiceContext, StorageMode
from guanjia.core.backoff import Backoff

log = logging.getLogger(__name__)


async def read_settings(conn: psycopg.AsyncConnection) -> dict[str, str]:
    cur = await conn.execute("SELECT key, value FROM storage_settings")
    return {str(k): str(v) for k, v in await cur.fetchall()}


async def partition_round(pool: AsyncConnectionPool[Any], mode: StorageMode, now: dt.datetime) -> None:
    """Create partitions ahead and drop expired ones (plain PostgreSQL; TimescaleDB has policies),
    then prune the 1-minute rollup and the dedupe log (both modes); ``now`` is the service clock's."""
    async with pool.connection() as conn:
        cfg = await read_settings(conn)
        retention = dt.timedelta(days=int(cfg.get("raw_retention_days", "90")))
        if mode == "plain":
            async with conn.transaction():
                await partitions.ensure_ahead(conn, now, int(cfg.get("partitions_ahead_days", "3")))
            async with conn.transaction():
                await partitions.drop_older_than(conn, now - retention)
        async with conn.transaction():
            keep_1m = dt.timedelta(days=int(cfg.get("rollup_1m_retention_days", "400")))
            await conn.execute("DELETE FROM telemetry_1m WHERE bucket < %s", (now - keep_1m,))
            # keep each incarnation's newest batch: its high-water mark is what the seq window and
            # the dedupe of a late resend are measured from (see cloud.ingest.writer)
            await conn.execute(
                "DELETE FROM ingest_batches b WHERE b.received_at < %s AND b.seq < (SELECT max(m.seq) "
                "FROM ingest_batches m WHERE m.gateway_id = b.gateway_id AND m.incarnation = b.incarnation)",
                (now - retention,))


@dataclass(slots=True)
class Maintenance:
    name: str = "storage-maintenance"
    refresh_interval: float = 5.0
    partition_interval: float = 600.0

    async def run(self, ctx: ServiceContext) -> None:
        refreshed = ctx.metrics.counter("guanjia_rollup_refresh_total", "Rollup refresh rounds that did work")
        failures = ctx.metrics.counter("guanjia_maintenance_failures_total", "Maintenance rounds that failed")
        backoff = Backoff(initial=1.0, cap=60.0)
        next_partition = 0.0
        while True:
            try:
                if time.monotonic() >= next_partition:
                    await partition_round(ctx.pool, ctx.mode, ctx.clock.now())
                    next_partition = time.monotonic() + self.partition_interval
                async with ctx.pool.connection() as conn:
                    result = await rollups.refresh(conn, ctx.mode, ctx.clock.now())
                if result.ranges:
                    refreshed.inc()
                backoff.reset()
                await asyncio.sleep(self.refresh_interval)
            except (psycopg.Error, PoolTimeout, OSError) as exc:
                failures.inc()
                delay = backoff.next_delay()
                log.warning("storage maintenance failed (%s); retrying in %.1fs", str(exc).strip()[:200], delay)
                await asyncio.sleep(delay)


def components(ctx: ServiceContext) -> list[Component]:
    return [Maintenance()]
