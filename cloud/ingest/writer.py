"""The ingest transaction: dedupe by (gateway, seq), COPY, alarms/events, dead letters, commit.

Exactly once: each sequenced message claims its ``(gateway_id, seq)`` row in ``ingest_batches``
in the same transaction as its data. ``ON CONFLICT DO NOTHING RETURNING`` tells which messages
are new; a redelivered one (or one a crashed worker's peer already committed — the insert waits
for that transaction) is skipped and counted as a duplicate. Only after ``COMMIT`` are the
messages acknowledged to the broker, so a crash at any point means redelivery, never loss.

After commit the writer NOTIFYs ``guanjia_ingest`` with the committed ``gateway_id:seq`` list
(truncated to fit), ``guanjia_alarm_events`` / ``guanjia_device_events`` with the newest ids, and
calls the in-process hooks (:mod:`cloud.ingest.hooks`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from cloud.db import partitions
from cloud.ingest.copy import COPY_SQL, stream
from cloud.ingest.hooks import ALARM_CHANNEL, EVENT_CHANNEL
from cloud.ingest.prepare import DeadLetter, Prepared, ms_to_dt

log = logging.getLogger(__name__)

COMMIT_CHANNEL = "guanjia_ingest"
_NOTIFY_LIMIT = 7900

_CLAIM = """
INSERT INTO ingest_batches (gateway_id, seq, kind, items, points, sent_at)
SELECT * FROM unnest(%s::int[], %s::bigint[], %s::text[], %s::int[], %s::int[], %s::timestamptz[])
ON CONFLICT DO NOTHING
RETURNING gateway_id, seq
"""
_ALARMS = """
INSERT INTO alarm_events (gateway_id, seq, device_id, device_code, rule, state, severity, ts, message, value,
                          value_text, work_order, labels)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb) RETURNING id
"""
_EVENTS = """
INSERT INTO device_events (gateway_id, seq, device_id, device_code, type, ts, data)
VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb) RETURNING id
"""
_DEAD = """
INSERT INTO dead_letters (topic, community, gateway, gateway_id, reason, detail, payload, payload_size)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""
_STATUS = """
UPDATE gateways SET online = %s, last_seen = greatest(last_seen, %s), status = jsonb_build_object('state', %s::text,
       'health', %s::jsonb) WHERE id = %s
"""


@dataclass(slots=True)
class WriteResult:
    new: list[Prepared] = field(default_factory=list)
    duplicates: list[Prepared] = field(default_factory=list)
    points: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    alarm_ids: list[int] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Writer:
    mode: str = "plain"
    known_days: set[dt.date] = field(default_factory=set)

    async def write(self, conn: psycopg.AsyncConnection, batch: list[Prepared]) -> WriteResult:
        """Write ``batch`` in one transaction on ``conn`` (which must not be in a transaction)."""
        result = WriteResult()
        # the first occurrence of a (gateway, seq) inside the batch claims it; later ones are dupes
        seen: set[tuple[int, int]] = set()
        claims: list[Prepared] = []
        for p in batch:
            if p.sequenced:
                key = (p.gateway_id or 0, p.seq or 0)
                if key in seen:
                    result.duplicates.append(p)
                    continue
                seen.add(key)
                claims.append(p)
        if self.mode == "plain":
            tmins = [p.tmin_ms for p in batch if p.tmin_ms is not None]
            if tmins:
                # own short transaction: DDL on the parent must not wait inside a data transaction
                async with conn.transaction():
                    await self._ensure_partitions(conn, min(tmins), max(p.tmax_ms or 0 for p in batch))
        async with conn.transaction():
            claimed: set[tuple[int, int]] = set()
            if claims:
                cur = await conn.execute(_CLAIM, (
                    [p.gateway_id for p in claims], [p.seq for p in claims], [p.kind for p in claims],
                    [p.items for p in claims], [p.points for p in claims],
                    [ms_to_dt(p.sent_at_ms) if p.sent_at_ms is not None and abs(p.sent_at_ms) < 2**52 else None
                     for p in claims],
                ))
                claimed = {(int(g), int(s)) for g, s in await cur.fetchall()}
            for p in claims:
                (result.new if (p.gateway_id, p.seq) in claimed else result.duplicates).append(p)
            await self._data(conn, result)
            new_ids = {id(p) for p in result.new}
            dead = [d for p in batch if not p.sequenced or id(p) in new_ids for d in p.dead]
            if dead:
                async with conn.cursor() as cur:
                    await cur.executemany(_DEAD, [(d.topic, d.community, d.gateway, d.gateway_id, d.reason, d.detail,
                                                   d.payload, d.payload_size) for d in dead])
                result.dead = dead
            for p in batch:
                if p.status is not None:
                    online, seen_at, state, health = p.status
                    await conn.execute(_STATUS, (online, seen_at, state, health, p.gateway_id))
            await self._notify(conn, result)
        return result

    async def _data(self, conn: psycopg.AsyncConnection, result: WriteResult) -> None:
        new = result.new
        rows = [p.rows for p in new if p.rows]
        texts = [r for p in new for r in p.text_rows]
        tmins = [p.tmin_ms for p in new if p.tmin_ms is not None]
        tmaxs = [p.tmax_ms for p in new if p.tmax_ms is not None]
        if rows:
            async with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
                await copy.write(stream(rows))
        if texts:
            async with conn.cursor() as cur, cur.copy(
                    "COPY telemetry_text (time, device_id, metric_id, value, quality) FROM STDIN") as copy:
                for row in texts:
                    await copy.write_row(row)
        if tmins:
            await conn.execute("INSERT INTO rollup_invalidations (low, high) VALUES (%s, %s)",
                               (ms_to_dt(min(tmins)), ms_to_dt(max(tmaxs))))
        result.points = sum(p.points for p in new if p.kind == "telemetry")
        for p in new:
            for alarm in p.alarms:
                cur = await conn.execute(_ALARMS, alarm)
                if (new_id := await cur.fetchone()) is not None:
                    result.alarm_ids.append(int(new_id[0]))
            for event in p.events:
                cur = await conn.execute(_EVENTS, event)
                if (new_id := await cur.fetchone()) is not None:
                    result.event_ids.append(int(new_id[0]))

    async def _ensure_partitions(self, conn: psycopg.AsyncConnection, low_ms: int, high_ms: int) -> None:
        first, last = ms_to_dt(low_ms).date(), ms_to_dt(high_ms).date()
        days = {first + dt.timedelta(days=i) for i in range((last - first).days + 1)}
        if days <= self.known_days:
            return
        missing = days - self.known_days
        have = await partitions.existing_days(conn)
        if missing - have:
            # DDL inside the data transaction: a savepoint would not help, the advisory lock does
            await partitions.ensure_days(conn, missing - have)
        self.known_days |= days

    async def _notify(self, conn: psycopg.AsyncConnection, result: WriteResult) -> None:
        if result.new:
            payload = ",".join(f"{p.gateway_id}:{p.seq}" for p in result.new)
            if len(payload) > _NOTIFY_LIMIT:
                payload = payload[: payload.rfind(",", 0, _NOTIFY_LIMIT)] + ",…"
            await conn.execute(sql.SQL("NOTIFY {}, {}").format(sql.Identifier(COMMIT_CHANNEL), sql.Literal(payload)))
        for channel, ids in ((ALARM_CHANNEL, result.alarm_ids), (EVENT_CHANNEL, result.event_ids)):
            if ids:
                await conn.execute(sql.SQL("NOTIFY {}, {}").format(sql.Identifier(channel), sql.Literal(str(max(ids)))))


def describe(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc).strip()[:300]}
