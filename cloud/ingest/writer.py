"""The ingest transaction: dedupe by (gateway, incarnation, seq) and content, COPY, alarms/events,
dead letters, quarantine, commit.

Exactly once: each sequenced message claims its ``(gateway_id, incarnation, seq)`` row in
``ingest_batches`` in the same transaction as its data, with the digest of its items.
``ON CONFLICT DO NOTHING RETURNING`` tells which messages are new; one that is not (a redelivery,
or one a crashed worker's peer already committed — the insert waits for that transaction) is
compared by digest with the stored batch:

* same content → a duplicate: skipped, and confirmed to the edge (it is stored);
* different content → ``seq_conflict``: someone else used the edge's numbers (a forged batch with
  the gateway's credentials) or an edge reused them. A sequence number must never erase data, so
  the message is kept whole in ``ingest_quarantine`` beside the stored one, a security alarm goes
  through the ordinary alarm path (``alarm_events``), and only then is it confirmed — its payload
  *is* stored, for an operator to judge.

A seq more than ``seq_window`` above its incarnation's high-water mark is not trusted either: it
goes to the quarantine as ``seq_out_of_window`` with an alarm and is **not** confirmed, so the
edge resends it and it is taken once it falls inside (see :attr:`cloud.ingest.prepare.Policy.seq_window`).
The high-water marks are cached per writer (they only grow; a stale one is only stricter, and a
miss is checked against the database before anything is held). The first batch of an
incarnation records it in ``gateway_incarnations``; when the gateway had another one before
(a wiped or replaced outbox) an info alarm says so. Nothing is dropped for it.

Only after ``COMMIT`` are the messages acknowledged to the broker, so a crash at any point means
redelivery, never loss.

After commit the writer NOTIFYs ``guanjia_ingest`` with the committed ``gateway_id:seq`` list
(truncated to fit), ``guanjia_alarm_events`` / ``guanjia_device_events`` with the newest ids, and
calls the in-process hooks (:mod:`cloud.runtime.hooks`).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import Any, Final

import orjson
import psycopg
from psycopg import sql

from cloud.db import partitions
from cloud.db.rows import insert_sql
from cloud.ingest.copy import COPY_SQL, stream
from cloud.ingest.prepare import SEQ_WINDOW, DeadLetter, Prepared, ms_to_dt
from cloud.ingest.rows import AlarmEventRow, DeviceEventRow
from cloud.runtime.hooks import ALARM_CHANNEL, EVENT_CHANNEL
from guanjia.core.errors import WireError
from guanjia.core.wire import parse_topic

log = logging.getLogger(__name__)

COMMIT_CHANNEL = "guanjia_ingest"
_NOTIFY_LIMIT = 7900
HIGH_WATER_CACHE_MAX: Final = 100_000

# ``%b``: these arrays go in binary (psycopg's C dumpers per element); in text, each element of
# the text and bytea arrays passed a quoting regex in Python — ~7 % of a busy worker (issue 21)
_CLAIM = """
INSERT INTO ingest_batches (gateway_id, incarnation, seq, kind, items, points, sent_at, digest)
SELECT * FROM unnest(%b::int[], %b::text[], %b::bigint[], %b::text[], %b::int[], %b::int[], %s::timestamptz[],
                     %b::bytea[])
ON CONFLICT DO NOTHING
RETURNING gateway_id, incarnation, seq
"""
_STORED_DIGESTS = """
SELECT b.gateway_id, b.incarnation, b.seq, b.digest
FROM ingest_batches b
JOIN unnest(%b::int[], %b::text[], %b::bigint[]) AS k (g, i, s) ON b.gateway_id = k.g AND b.incarnation = k.i
                                                               AND b.seq = k.s
"""
_HIGH_WATER = """
SELECT k.g, k.i, (SELECT max(b.seq) FROM ingest_batches b WHERE b.gateway_id = k.g AND b.incarnation = k.i)
FROM unnest(%b::int[], %b::text[]) AS k (g, i)
"""
_NEW_INCARNATION = """
INSERT INTO gateway_incarnations (gateway_id, incarnation, first_seq) VALUES (%s, %s, %s)
ON CONFLICT DO NOTHING
RETURNING (SELECT count(*) FROM gateway_incarnations o WHERE o.gateway_id = %s)
"""
_QUARANTINE = """
INSERT INTO ingest_quarantine (gateway_id, incarnation, seq, kind, reason, detail, digest, stored_digest, high_water,
                               topic, payload)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (gateway_id, incarnation, seq, digest, reason)
DO UPDATE SET attempts = ingest_quarantine.attempts + 1, last_seen_at = now()
RETURNING (xmax = 0) AS inserted
"""
INSERT_ALARM_EVENT = insert_sql("alarm_events", AlarmEventRow, casts={"labels": "jsonb"}, returning="id")
_EVENTS = insert_sql("device_events", DeviceEventRow, casts={"data": "jsonb"}, returning="id")
_DEAD = """
INSERT INTO dead_letters (topic, community, gateway, gateway_id, reason, detail, payload, payload_size)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s)
"""
_STATUS = """
UPDATE gateways SET online = %s, last_seen = greatest(last_seen, %s), status = jsonb_build_object('state', %s::text,
       'health', %s::jsonb) WHERE id = %s
"""


Key = tuple[int, str, int]
"""(gateway_id, incarnation, seq): what a sequenced message is deduplicated on."""


def _key(p: Prepared) -> Key:
    return (p.gateway_id or 0, p.incarnation, p.seq or 0)


@dataclass(slots=True)
class WriteResult:
    new: list[Prepared] = field(default_factory=list)
    duplicates: list[Prepared] = field(default_factory=list)
    conflicts: list[Prepared] = field(default_factory=list)
    """``seq_conflict``: quarantined (and confirmed: the payload is stored there)."""
    held: list[Prepared] = field(default_factory=list)
    """``seq_out_of_window``: quarantined, not confirmed (``Prepared.held``)."""
    new_incarnations: list[tuple[int, str]] = field(default_factory=list)
    points: int = 0
    dead: list[DeadLetter] = field(default_factory=list)
    alarm_ids: list[int] = field(default_factory=list)
    event_ids: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Writer:
    mode: str = "plain"
    known_days: set[dt.date] = field(default_factory=set)
    seq_window: int = SEQ_WINDOW
    high_water: dict[tuple[int, str], int] = field(default_factory=dict)
    """Cached high-water mark per (gateway_id, incarnation), raised after each commit. Bounded
    (:data:`HIGH_WATER_CACHE_MAX`; anyone with a gateway's credentials can invent incarnations):
    when full it is emptied, which costs one lookup per incarnation on its next message."""

    async def write(self, conn: psycopg.AsyncConnection, batch: list[Prepared]) -> WriteResult:
        """Write ``batch`` in one transaction on ``conn`` (which must not be in a transaction)."""
        result = WriteResult()
        # the first occurrence of a key inside the batch claims it; a later one with the same content
        # is a duplicate, one with other content is compared with what the claim left in the table
        seen: dict[Key, bytes] = {}
        claims: list[Prepared] = []
        later: list[Prepared] = []
        for p in batch:
            p.held = False  # a retried batch is judged afresh
            if p.sequenced:
                key = _key(p)
                if key in seen:
                    (result.duplicates if seen[key] == p.digest else later).append(p)
                    continue
                seen[key] = p.digest
                claims.append(p)
        if self.mode == "plain":
            tmins = [p.tmin_ms for p in batch if p.tmin_ms is not None]
            days = _days(min(tmins), max(p.tmax_ms or 0 for p in batch)) if tmins else set()
            if not days <= self.known_days:  # (known: no transaction at all, a round trip saved per batch)
                # own short transaction: DDL on the parent must not wait inside a data transaction
                async with conn.transaction():
                    await self._ensure_partitions(conn, days)
        async with conn.transaction():
            high_water = await self._window(conn, claims, result)
            held_keys = {_key(p) for p in claims if p.held}
            for p in later:  # another copy of a held message is held too: nothing of that key is stored
                if _key(p) in held_keys:
                    p.held = True
                    result.held.append(p)
            claims = [p for p in claims if not p.held]
            later = [p for p in later if not p.held]
            claimed: set[Key] = set()
            if claims:
                cur = await conn.execute(_CLAIM, (
                    [p.gateway_id for p in claims], [p.incarnation for p in claims], [p.seq for p in claims],
                    [p.kind for p in claims], [p.items for p in claims], [p.points for p in claims],
                    [ms_to_dt(p.sent_at_ms) if p.sent_at_ms is not None and abs(p.sent_at_ms) < 2**52 else None
                     for p in claims],
                    [p.digest for p in claims],
                ))
                claimed = {(int(g), str(i), int(s)) for g, i, s in await cur.fetchall()}
            unclaimed = [p for p in claims if _key(p) not in claimed] + later
            result.new = [p for p in claims if _key(p) in claimed]
            stored = await self._stored_digests(conn, unclaimed)
            for p in unclaimed:
                theirs = stored.get(_key(p))
                (result.duplicates if theirs is None or theirs == p.digest else result.conflicts).append(p)
            await self._quarantine(conn, result, stored, high_water)
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
        if len(self.high_water) > HIGH_WATER_CACHE_MAX:
            self.high_water.clear()
        for p in result.new:
            hw_key = (p.gateway_id or 0, p.incarnation)
            if (p.seq or 0) > self.high_water.get(hw_key, -1):
                self.high_water[hw_key] = p.seq or 0
        return result

    async def _window(self, conn: psycopg.AsyncConnection, claims: list[Prepared],
                      result: WriteResult) -> dict[tuple[int, str], int | None]:
        """Mark claims too far above their incarnation's high-water mark as held; record new
        incarnations. Only keys missing from the cache or seqs past the cached window ask the database."""
        ask = {(p.gateway_id or 0, p.incarnation) for p in claims
               if (p.seq or 0) > self.high_water.get((p.gateway_id or 0, p.incarnation), -self.seq_window - 1)
               + self.seq_window}
        known: dict[tuple[int, str], int | None] = {}
        if ask:
            pairs = sorted(ask)
            cur = await conn.execute(_HIGH_WATER, ([g for g, _ in pairs], [i for _, i in pairs]))
            for g, i, hw in await cur.fetchall():
                known[(int(g), str(i))] = None if hw is None else int(hw)
                if hw is not None:
                    self.high_water[(int(g), str(i))] = max(int(hw), self.high_water.get((int(g), str(i)), 0))
        firsts: dict[tuple[int, str], int] = {}
        for p in claims:
            pair = (p.gateway_id or 0, p.incarnation)
            hw = self.high_water.get(pair, 0)
            if (p.seq or 0) > hw + self.seq_window:
                p.held = True
                result.held.append(p)
            elif pair in known and known[pair] is None:
                firsts[pair] = min(firsts.get(pair, p.seq or 0), p.seq or 0)
        for (gateway_id, incarnation), first_seq in sorted(firsts.items()):
            cur = await conn.execute(_NEW_INCARNATION, (gateway_id, incarnation, first_seq, gateway_id))
            row = await cur.fetchone()
            if row is not None and int(row[0]) > 0:  # the gateway had another incarnation before
                result.new_incarnations.append((gateway_id, incarnation))
        return {pair: self.high_water.get(pair) for pair in {(p.gateway_id or 0, p.incarnation) for p in claims}}

    @staticmethod
    async def _stored_digests(conn: psycopg.AsyncConnection, unclaimed: list[Prepared]) -> dict[Key, bytes | None]:
        if not unclaimed:
            return {}
        cur = await conn.execute(_STORED_DIGESTS, ([p.gateway_id for p in unclaimed],
                                                   [p.incarnation for p in unclaimed], [p.seq for p in unclaimed]))
        return {(int(g), str(i), int(s)): (bytes(d) if d is not None else None) for g, i, s, d in await cur.fetchall()}

    async def _quarantine(self, conn: psycopg.AsyncConnection, result: WriteResult, stored: dict[Key, bytes | None],
                          high_water: dict[tuple[int, str], int | None]) -> None:
        """Keep conflicting and out-of-window messages whole, and raise one security alarm per new
        quarantine row (a resend of the same message only counts an attempt)."""
        alarms: list[AlarmEventRow] = []
        for reason, items in (("seq_conflict", result.conflicts), ("seq_out_of_window", result.held)):
            for p in items:
                hw = high_water.get((p.gateway_id or 0, p.incarnation))
                theirs = stored.get(_key(p))
                detail = (f"incarnation {p.incarnation} seq {p.seq}: stored digest {theirs.hex() if theirs else '?'}, "
                          f"this one {p.digest.hex()}" if reason == "seq_conflict" else
                          f"incarnation {p.incarnation} seq {p.seq} is {(p.seq or 0) - (hw or 0)} above the "
                          f"high-water mark {hw or 0} (window {self.seq_window})")
                cur = await conn.execute(_QUARANTINE, (
                    p.gateway_id, p.incarnation, p.seq, p.kind, reason, detail, p.digest, theirs, hw,
                    p.incoming.topic[:300], p.incoming.payload))
                row = await cur.fetchone()
                if row is not None and row[0]:
                    alarms.append(security_alarm(p, reason, hw))
        for gateway_id, incarnation in result.new_incarnations:
            first = next(p for p in result.new + result.duplicates + result.conflicts
                         if p.gateway_id == gateway_id and p.incarnation == incarnation)
            alarms.extend(incarnation_alarms(first))
        for alarm in alarms:
            cur = await conn.execute(INSERT_ALARM_EVENT, alarm)
            if (new_id := await cur.fetchone()) is not None:
                result.alarm_ids.append(int(new_id[0]))

    async def _data(self, conn: psycopg.AsyncConnection, result: WriteResult) -> None:
        new = result.new
        rows = [chunk for p in new for chunk in p.chunks]
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
                cur = await conn.execute(INSERT_ALARM_EVENT, alarm)
                if (new_id := await cur.fetchone()) is not None:
                    result.alarm_ids.append(int(new_id[0]))
            for event in p.events:
                cur = await conn.execute(_EVENTS, event)
                if (new_id := await cur.fetchone()) is not None:
                    result.event_ids.append(int(new_id[0]))

    async def _ensure_partitions(self, conn: psycopg.AsyncConnection, days: set[dt.date]) -> None:
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


def _days(low_ms: int, high_ms: int) -> set[dt.date]:
    """The UTC days (partitions) from ``low_ms`` to ``high_ms``."""
    first, last = ms_to_dt(low_ms).date(), ms_to_dt(high_ms).date()
    return {first + dt.timedelta(days=i) for i in range((last - first).days + 1)}


SECURITY_RULES: Final = {"seq_conflict": "ingest-seq-conflict", "seq_out_of_window": "ingest-seq-out-of-window"}
INCARNATION_RULE: Final = "gateway-new-incarnation"


def _gateway_code(p: Prepared) -> str:
    try:
        return parse_topic(p.incoming.topic).gateway
    except WireError:
        return "?"


def security_alarm(p: Prepared, reason: str, high_water: int | None) -> AlarmEventRow:
    """The ``alarm_events`` row of a quarantined message: critical, no work order (this is for
    the operator's security desk, not a butler): the English text as the message, the Chinese in
    the ``message_zh`` label, as every alarm carries it."""
    gateway = _gateway_code(p)
    if reason == "seq_conflict":
        message_zh = (f"安全告警：网关 {gateway} 的批次（实例 {p.incarnation}，序号 {p.seq}）"
                      f"与已存储批次序号相同、内容不同，已隔离保存，未覆盖任何数据。可能有人冒用该网关凭据。")
        message = (f"Security: gateway {gateway} sent batch seq {p.seq} (incarnation {p.incarnation}) with other "
                   f"content than the stored one; both kept, the new one quarantined. Its credentials may be in "
                   f"someone else's hands.")
    else:
        message_zh = (f"安全告警：网关 {gateway} 的批次序号 {p.seq}（实例 {p.incarnation}）远高于已收到的最高序号 "
                      f"{high_water or 0}，已隔离，未确认。")
        message = (f"Security: gateway {gateway} sent seq {p.seq} (incarnation {p.incarnation}), far above the "
                   f"high-water mark {high_water or 0}; quarantined, not confirmed.")
    labels = orjson.dumps({"kind": "gateway", "incarnation": p.incarnation, "seq": str(p.seq), "reason": reason,
                           "message_zh": message_zh})
    return AlarmEventRow(gateway_id=p.gateway_id, seq=p.seq, device_id=None, device_code=gateway,
                         rule=SECURITY_RULES[reason], state="raise", severity="critical",
                         ts=ms_to_dt(p.incoming.received_ms), message=message, value=None, value_text=None,
                         work_order=False, labels=labels.decode(), incarnation=p.incarnation)


def incarnation_alarms(p: Prepared) -> list[AlarmEventRow]:
    """A new outbox incarnation of a gateway that had another: an info alarm raised and cleared at
    once (an event in the gateway's history, not a standing condition), no work order."""
    gateway = _gateway_code(p)
    message_zh = (f"网关 {gateway} 启用了新的缓存实例 {p.incarnation}（起始序号 {p.seq}）：本地缓存被清除或更换过。"
                  f"数据照常接收，旧实例的缺口见网关页面。")
    message = (f"Gateway {gateway} started a new outbox incarnation {p.incarnation} (first seq {p.seq}): its outbox "
               f"was wiped or replaced. Data is stored as usual; the old incarnation's gaps are on the gateway page.")
    labels = orjson.dumps({"kind": "gateway", "incarnation": p.incarnation, "message_zh": message_zh}).decode()
    ts = ms_to_dt(p.incoming.received_ms)
    return [AlarmEventRow(gateway_id=p.gateway_id, seq=p.seq, device_id=None, device_code=gateway,
                          rule=INCARNATION_RULE, state=state, severity="info", ts=ts + dt.timedelta(milliseconds=i),
                          message=message, value=None, value_text=None, work_order=False, labels=labels,
                          incarnation=p.incarnation)
            for i, state in enumerate(("raise", "clear"))]


def describe(exc: BaseException) -> dict[str, Any]:
    return {"type": type(exc).__name__, "message": str(exc).strip()[:300]}
