"""Component: turn ingest's ``alarm_events`` rows into alarms and work orders, promptly.

Woken by ingest's NOTIFY ``guanjia_alarm_events`` (sent at commit) or its in-process hook, and by
a poll timer as a safety net. Each event is applied in its OWN transaction, committed at once so
the butler hears at once; the transaction first *claims* the event in ``alarm_events_applied``
(primary key: several service processes may fetch the same rows, exactly one applies each). A bad
event is logged and stays claimed (no poison pill). The cursor advances only past ids that are
applied and can no longer appear (ids from concurrent ingest transactions commit out of order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import zlib
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.ops.alarms.lifecycle import Result, apply_locked
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import Policy
from cloud.ops.notify.listen import listen_forever
from guanjia.core.clock import Clock, to_ms

log = logging.getLogger(__name__)

ALARM_EVENTS_CHANNEL: Final = "guanjia_alarm_events"
SETTLE_SECONDS: Final = 60
"""An uncommitted ingest transaction older than this cannot exist (ingest has deadlines), so the
cursor may pass ids below it that never appeared (rolled back)."""

_BATCH_SQL = """
SELECT e.id, e.seq, e.rule, e.state, e.severity, e.ts, e.message, e.value, e.value_text, e.work_order, e.labels,
       e.device_code, e.incarnation,
       c.code AS community, g.code AS gateway, d.kind AS device_kind, b.code AS building
FROM alarm_events e
JOIN gateways g ON g.id = e.gateway_id
JOIN communities c ON c.id = g.community_id
LEFT JOIN devices d ON d.id = e.device_id
LEFT JOIN buildings b ON b.id = d.building_id
WHERE e.id > %s AND NOT EXISTS (SELECT 1 FROM alarm_events_applied a WHERE a.event_id = e.id)
ORDER BY e.id LIMIT %s
"""


def event_from_row(row: dict[str, Any]) -> AlarmEvent:
    """The lifecycle's event from an ``alarm_events`` row: the edge's event time *and* the batch's
    outbox seq and that seq's outbox incarnation (the ordering key, :mod:`cloud.ops.alarms.ordering`;
    ``NULL`` for rows written before migration 010 or by hand)."""
    labels = {str(k): str(v) for k, v in (row["labels"] or {}).items()}
    kind = row["device_kind"] if row["device_kind"] not in (None, "unknown") else labels.get("kind")
    value = row["value"] if row["value"] is not None else row["value_text"]
    return AlarmEvent(
        community=row["community"], device=row["device_code"], rule=row["rule"], state=row["state"],
        ts=to_ms(row["ts"]), severity=str(row["severity"]).lower(), message=row["message"], value=value,
        work_order=row["work_order"], labels=labels, gateway=row["gateway"], source="edge",
        device_kind=kind, building=row["building"] or labels.get("building"), seq=row["seq"],
        incarnation=row.get("incarnation"),
    )


async def fetch_pending(conn: AsyncConnection[Any], limit: int) -> list[dict[str, Any]]:
    """Events above the cursor that are not applied yet, oldest first."""
    async with conn.transaction():
        cur = await conn.execute("SELECT last_id FROM alarm_event_cursor WHERE name = 'alarms'")
        row = await cur.fetchone()
        async with conn.cursor(row_factory=dict_row) as dcur:
            await dcur.execute(_BATCH_SQL, (int(row[0]) if row else 0, limit))
            return await dcur.fetchall()


async def apply_row(conn: AsyncConnection[Any], policy: Policy, row: dict[str, Any], now: datetime) -> Result | None:
    """Claim and apply one event in its own transaction, committed at once (so the butler's
    notification leaves at once). ``None`` when another process already applied it. A bad event
    is logged and claimed anyway: one poison row must not block the stream.

    The transaction commits with ``synchronous_commit = off`` (no WAL flush wait: the largest
    part of an event's latency on a busy disk). Safe because everything it writes derives from the
    durably committed ``alarm_events`` row and the claim is in the same transaction: if a database
    crash loses the last few commits, their events are unclaimed again and re-applied."""
    claim = """WITH c AS (INSERT INTO alarm_events_applied (event_id) VALUES (%s) ON CONFLICT DO NOTHING RETURNING 1)
               SELECT (SELECT count(*) FROM c), pg_advisory_xact_lock(hashtextextended(%s, 7)),
                      set_config('synchronous_commit', 'off', true)"""
    key = f"{row['community']}\x1f{row['device_code']}"  # the same key as cloud.queries.assets.lock_device
    try:
        async with conn.transaction():
            # claim the event and lock its device in one round trip
            cur = await conn.execute(claim, (row["id"], key))
            claimed = await cur.fetchone()
            if claimed is None or claimed[0] == 0:
                return None
            return await apply_locked(conn, policy, event_from_row(row), now)
    except (psycopg.Error, ValueError, KeyError) as exc:
        log.error("alarm event %s skipped: %s", row["id"], exc)
        async with conn.transaction():
            await conn.execute("INSERT INTO alarm_events_applied (event_id) VALUES (%s) ON CONFLICT DO NOTHING",
                               (row["id"],))
        return None


async def advance_cursor(conn: AsyncConnection[Any]) -> int:
    """Move the cursor past ids that are applied and can no longer be joined by a late commit;
    prune the applied set below it. Skipped when another process is doing it."""
    async with conn.transaction():
        cur = await conn.execute("SELECT last_id FROM alarm_event_cursor WHERE name = 'alarms' "
                                 "FOR UPDATE SKIP LOCKED")
        row = await cur.fetchone()
        if row is None:
            return -1
        cursor = int(row[0])
        cur = await conn.execute(
            """SELECT (SELECT max(id) FROM alarm_events WHERE id > %s AND received_at < now() - %s * interval '1 s'),
                      (SELECT min(e.id) FROM alarm_events e WHERE e.id > %s
                         AND NOT EXISTS (SELECT 1 FROM alarm_events_applied a WHERE a.event_id = e.id))""",
            (cursor, SETTLE_SECONDS, cursor),
        )
        settled, first_open = await cur.fetchone() or (None, None)
        if settled is None:
            return cursor
        new_cursor = int(settled) if first_open is None else min(int(settled), int(first_open) - 1)
        if new_cursor > cursor:
            await conn.execute("UPDATE alarm_event_cursor SET last_id = %s, updated_at = now() WHERE name = 'alarms'",
                               (new_cursor,))
            await conn.execute("DELETE FROM alarm_events_applied WHERE event_id <= %s", (new_cursor,))
            return new_cursor
        return cursor


async def process_batch(conn: AsyncConnection[Any], policy: Policy, now: datetime,
                        limit: int = 50) -> list[Result]:
    """Apply the next batch of alarm events one by one on one connection (tests, tools)."""
    results = []
    for row in await fetch_pending(conn, limit):
        result = await apply_row(conn, policy, row, now)
        if result is not None:
            results.append(result)
    await advance_cursor(conn)
    return results


class AlarmProcessor:
    """Cloud-service component (see :mod:`cloud.components`).

    Events are applied by ``lanes`` concurrent tasks, each on its own pooled connection; an event
    goes to lane ``hash(community, device) % lanes``, so the events of one device keep their order
    (a clear is never applied before its raise) while different devices proceed in parallel. Each
    lane's queue is bounded (``lane_queue``); the fetcher waits when a lane is full.
    """

    name = "alarm-processor"

    def __init__(self, policy: Policy, clock: Clock, poll_interval: float = 2.0,
                 batch: int = 200, lanes: int = 6, lane_queue: int = 256) -> None:
        self.policy = policy
        self.clock = clock
        self.poll_interval = poll_interval
        self.batch = batch
        self.lanes: list[asyncio.Queue[dict[str, Any]]] = [asyncio.Queue(lane_queue) for _ in range(lanes)]
        self._wake = asyncio.Event()
        self._inflight: set[int] = set()

    def wake(self, *_: object) -> None:
        self._wake.set()

    async def _hook(self, ids: list[int]) -> None:
        self._wake.set()

    def _lane(self, row: dict[str, Any]) -> asyncio.Queue[dict[str, Any]]:
        return self.lanes[zlib.crc32(f"{row['community']}\x1f{row['device_code']}".encode()) % len(self.lanes)]

    async def _lane_worker(self, ctx: Any, queue: asyncio.Queue[dict[str, Any]], applied: Any, errors: Any) -> None:
        while True:
            row = await queue.get()
            started = time.perf_counter()
            try:
                async with asyncio.timeout(60), ctx.pool.connection() as conn:
                    waited = time.perf_counter() - started
                    result = await apply_row(conn, self.policy, row, self.clock.now())
                if result is not None:
                    applied.inc(outcome=result.outcome)
                    self.m_apply.observe(time.perf_counter() - started - waited)
                    self.m_checkout.observe(waited)
            except (psycopg.Error, TimeoutError) as exc:
                errors.inc()
                log.warning("alarm event %s not applied yet (%s); retried on the next pass", row["id"], exc)
            finally:
                self._inflight.discard(row["id"])
                queue.task_done()

    async def run(self, ctx: Any) -> None:
        applied = ctx.metrics.counter("guanjia_alarm_events_applied_total", "alarm events applied, by outcome")
        errors = ctx.metrics.counter("guanjia_alarm_processor_errors_total", "alarm processor failures")
        ctx.metrics.gauge("guanjia_alarm_processor_queued", "alarm events waiting in the processor's lanes",
                          lambda: float(sum(q.qsize() for q in self.lanes)))
        self.m_apply = ctx.metrics.summary("guanjia_alarm_apply_seconds", "time to apply one alarm event")
        self.m_checkout = ctx.metrics.summary("guanjia_alarm_pool_wait_seconds", "wait for a pooled connection")
        ctx.hooks.on_alarms(self._hook)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(listen_forever(ctx.database_url, [ALARM_EVENTS_CHANNEL],
                                          lambda _c, _p: self.wake(), self.wake))
            for queue in self.lanes:
                tg.create_task(self._lane_worker(ctx, queue, applied, errors))
            last_advance = 0.0
            while True:
                self._wake.clear()
                rows: list[dict[str, Any]] = []
                try:
                    async with asyncio.timeout(60), ctx.pool.connection() as conn:
                        rows = await fetch_pending(conn, self.batch)
                        if time.monotonic() - last_advance > 5:
                            await advance_cursor(conn)
                            last_advance = time.monotonic()
                except (psycopg.Error, TimeoutError) as exc:
                    errors.inc()
                    log.warning("alarm processor fetch failed: %s", exc)
                    await asyncio.sleep(1.0)
                fresh = [r for r in rows if r["id"] not in self._inflight]
                for row in fresh:
                    self._inflight.add(row["id"])
                    await self._lane(row).put(row)
                if len(rows) >= self.batch and fresh:
                    continue
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await self._wake.wait()
