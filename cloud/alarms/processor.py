"""Component: turn ingest's ``alarm_events`` rows into alarms and work orders, promptly.

Woken by ingest's NOTIFY ``guanjia_alarm_events`` (sent at commit) or its in-process hook, and by
a poll timer as a safety net. Each batch runs in ONE transaction that locks the cursor row (so
service processes take turns), applies every event (each in a savepoint: one bad event is logged
and skipped, not a poison pill), records the applied ids and advances the cursor only past ids
that can no longer appear (ids from concurrent ingest transactions commit out of order).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.alarms.lifecycle import Result, apply_event
from cloud.alarms.model import AlarmEvent
from cloud.notify.listen import listen_forever
from cloud.workorders.clock import Clock, SystemClock, to_ms
from cloud.workorders.policy import Policy

log = logging.getLogger(__name__)

ALARM_EVENTS_CHANNEL: Final = "guanjia_alarm_events"
SETTLE_SECONDS: Final = 60
"""An uncommitted ingest transaction older than this cannot exist (ingest has deadlines), so the
cursor may pass ids below it that never appeared (rolled back)."""

_BATCH_SQL = """
SELECT e.id, e.rule, e.state, e.severity, e.ts, e.message, e.value, e.value_text, e.work_order, e.labels,
       e.device_code, c.code AS community, g.code AS gateway, d.kind AS device_kind, b.code AS building
FROM alarm_events e
JOIN gateways g ON g.id = e.gateway_id
JOIN communities c ON c.id = g.community_id
LEFT JOIN devices d ON d.id = e.device_id
LEFT JOIN buildings b ON b.id = d.building_id
WHERE e.id > %s AND NOT EXISTS (SELECT 1 FROM alarm_events_applied a WHERE a.event_id = e.id)
ORDER BY e.id LIMIT %s
"""


def event_from_row(row: dict[str, Any]) -> AlarmEvent:
    labels = {str(k): str(v) for k, v in (row["labels"] or {}).items()}
    kind = row["device_kind"] if row["device_kind"] not in (None, "unknown") else labels.get("kind")
    value = row["value"] if row["value"] is not None else row["value_text"]
    return AlarmEvent(
        community=row["community"], device=row["device_code"], rule=row["rule"], state=row["state"],
        ts=to_ms(row["ts"]), severity=str(row["severity"]).lower(), message=row["message"], value=value,
        work_order=row["work_order"], labels=labels, gateway=row["gateway"], source="edge",
        device_kind=kind, building=row["building"] or labels.get("building"),
    )


async def process_batch(conn: AsyncConnection[Any], policy: Policy, now: datetime,
                        limit: int = 50) -> list[Result]:
    """Apply the next batch of alarm events; return what happened to each."""
    results: list[Result] = []
    async with conn.transaction():
        cur = await conn.execute("SELECT last_id FROM alarm_event_cursor WHERE name = 'alarms' FOR UPDATE")
        row = await cur.fetchone()
        cursor = int(row[0]) if row else 0
        async with conn.cursor(row_factory=dict_row) as dcur:
            await dcur.execute(_BATCH_SQL, (cursor, limit))
            rows = await dcur.fetchall()
        for event_row in rows:
            try:
                results.append(await apply_event(conn, policy, event_from_row(event_row), now))
            except (psycopg.Error, ValueError, KeyError) as exc:
                log.error("alarm event %s skipped: %s", event_row["id"], exc)
        if rows:
            await conn.execute("INSERT INTO alarm_events_applied (event_id) SELECT unnest(%s::bigint[]) "
                               "ON CONFLICT DO NOTHING", ([r["id"] for r in rows],))
        cur = await conn.execute(
            """SELECT (SELECT max(id) FROM alarm_events WHERE id > %s AND received_at < now() - %s * interval '1 s'),
                      (SELECT min(e.id) FROM alarm_events e WHERE e.id > %s
                         AND NOT EXISTS (SELECT 1 FROM alarm_events_applied a WHERE a.event_id = e.id))""",
            (cursor, SETTLE_SECONDS, cursor),
        )
        settled, first_open = await cur.fetchone() or (None, None)
        if settled is not None:
            new_cursor = int(settled) if first_open is None else min(int(settled), int(first_open) - 1)
            if new_cursor > cursor:
                await conn.execute("UPDATE alarm_event_cursor SET last_id = %s, updated_at = now() "
                                   "WHERE name = 'alarms'", (new_cursor,))
                await conn.execute("DELETE FROM alarm_events_applied WHERE event_id <= %s", (new_cursor,))
    return results


class AlarmProcessor:
    """Cloud-service component (see :mod:`cloud.components`)."""

    name = "alarm-processor"

    def __init__(self, policy: Policy, clock: Clock | None = None, poll_interval: float = 2.0,
                 batch: int = 50) -> None:
        self.policy = policy
        self.clock = clock or SystemClock()
        self.poll_interval = poll_interval
        self.batch = batch
        self._wake = asyncio.Event()

    def wake(self, *_: object) -> None:
        self._wake.set()

    async def _hook(self, ids: list[int]) -> None:
        self._wake.set()

    async def run(self, ctx: Any) -> None:
        applied = ctx.metrics.counter("guanjia_alarm_events_applied_total", "alarm events applied, by outcome")
        errors = ctx.metrics.counter("guanjia_alarm_processor_errors_total", "alarm processor batch failures")
        ctx.hooks.on_alarms(self._hook)
        async with asyncio.TaskGroup() as tg:
            tg.create_task(listen_forever(ctx.database_url, [ALARM_EVENTS_CHANNEL],
                                          lambda _c, _p: self.wake(), self.wake))
            while True:
                self._wake.clear()
                try:
                    async with asyncio.timeout(60), ctx.pool.connection() as conn:
                        results = await process_batch(conn, self.policy, self.clock.now(), self.batch)
                except (psycopg.Error, TimeoutError) as exc:
                    errors.inc()
                    log.warning("alarm processor batch failed: %s", exc)
                    results = []
                    await asyncio.sleep(1.0)
                for r in results:
                    applied.inc(outcome=r.outcome)
                if len(results) >= self.batch:
                    continue  # more waiting
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.poll_interval):
                        await self._wake.wait()
