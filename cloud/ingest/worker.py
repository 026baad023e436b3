"""One ingest worker: consumer → prepare/batch → write → ack, as two tasks in one TaskGroup.

Queues and their policies (every queue bounded, every queue a metric):

* ``inbox`` (unbounded, bounded in practice by ``receive_maximum``: the broker never sends more
  unacknowledged messages; see :mod:`cloud.ingest.consumer`). Metric ``guanjia_ingest_queue_depth``.
* ``ready`` (2 batches): the batcher prepares the next batch while the writer commits the
  previous one; when the writer is slow the batcher waits, the inbox fills, acks stop and the
  broker holds the rest. Metric ``guanjia_ingest_ready_batches``.

Failures: database unreachable → the batch is retried with backoff, its messages stay
unacknowledged (nothing lost, nothing duplicated thanks to the (gateway, incarnation, seq) claim);
a batch the database *rejects* (a data error no validation caught) is split and retried message by message,
and a message rejected on its own becomes a ``storage_rejected`` dead letter — one poison message
never stalls the stream. Hostile input never raises out of the batcher.

Confirmations (:class:`cloud.ingest.confirm.ConfirmQueue`): queued after each commit and flushed
at most once per confirmation window (``WorkerOptions.confirm_window_s``, default
:data:`cloud.ingest.confirm.CONFIRM_WINDOW_S`, 0 = after every commit; while behind at least
:data:`cloud.ingest.confirm.BEHIND_WINDOW_S`): right after the commit when the window has passed,
else by the confirmer task at the window's end; when the queue is full the writer
waits before its next commit (backpressure). A worker is *behind* (the hint in its confirmations)
when its inbox holds at least half of ``receive_maximum``, confirmations are pending after a
flush, a batch's oldest message waited more than :data:`BEHIND_LAG_S` from receipt to commit, or
its retained ``behind`` status is up. That status (:mod:`cloud.ingest.backlog`) is for the edges
none of whose batches is committed: the status task estimates the broker-side backlog from the
committed messages' queueing delay every :data:`cloud.ingest.backlog.STATUS_REFRESH_S` and
publishes, refreshes or clears it on the confirmation connection.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from cloud.db.migrate import storage_mode_async
from cloud.ingest.backlog import BACKLOG_BEHIND_S, BEHIND_EXPIRY_S, STATUS_REFRESH_S, BacklogEstimate, BehindStatus
from cloud.ingest.confirm import CONFIRM_WINDOW_S, ConfirmQueue, Sent
from cloud.ingest.consumer import MqttConsumer
from cloud.ingest.prepare import Incoming, Policy, Prepared, Preparer, dead_letter
from cloud.ingest.registry_cache import RegistryCache
from cloud.ingest.writer import Writer, WriteResult
from cloud.runtime.hooks import IngestHooks
from cloud.runtime.metrics import Metrics
from guanjia.core.backoff import Backoff
from guanjia.core.clock import Clock, to_ms
from guanjia.core.settings import MqttUrl
from guanjia.core.wire import TOPIC_ROOT, ingest_status_topic

log = logging.getLogger(__name__)

UPLINK_KINDS = ("telemetry", "alarms", "events", "status")
CONFIRM_FLUSH_S = 0.05
"""The confirmer's longest sleep: how often it looks at pending confirmations (it wakes sooner
when a confirmation window ends sooner)."""
BEHIND_LAG_S = 1.0
"""Receive-to-commit age of a batch's oldest message above which the worker reports ``behind``."""
RECEIVE_MAXIMUM = 4000
"""Default MQTT v5 Receive Maximum of a worker: unacknowledged messages the broker may hand it.

Why 4,000 (it was 1,000): a message is acknowledged only after its batch commits, so this bounds
the whole pipeline — one batch committing, :attr:`IngestWorker.ready`'s two prepared batches and
the one being formed, :attr:`WorkerOptions.batch_messages` (500) each. At 1,000 (two batches) the
batcher ran dry while a commit was in flight and then waited a broker round trip for the next
messages: measured (issue 21, ``python -m bench ingest``, quiet machine, 2026-12-06) both cores
were only ~60–75 % busy at msg40 (209 µs of CPU per message × 7,023 messages/s). At 3,000–4,000,
with :data:`BATCH_POINTS`, the same bench reached 11,000–12,800 messages/s at 40 points and
1.8–2.0 M points/s at 200 points (docs/scaling.md). Memory stays bounded by the consumer's
64 MiB payload cap whatever this says."""
BATCH_POINTS = 150_000
"""Default points per write transaction (a batch also closes at :attr:`WorkerOptions.batch_messages`
or after :attr:`WorkerOptions.batch_wait_s`). At 50,000, 200-point messages made batches of 250
messages, and the per-commit cost (six round trips, the claim, NOTIFY, fsync, the confirmations)
was paid twice as often; at 150,000 the 500-message cap closes them, and 5,000-point messages
make 30-message COPYs, still well inside what one transaction should hold."""
GC_GEN0_THRESHOLD = 20_000
"""Allocations between young-generation collections in an ingest process (CPython's default: 700)."""


def tune_gc() -> None:
    """Fewer, cheaper garbage collections for the ingest's allocation pattern (process-wide).

    Why: a busy worker allocates a dict, a list and a few structs per reading and frees them
    within a batch; at CPython's default threshold (700) the young generation is collected every
    few messages and the old ones keep rescanning the long-lived caches (registry, topics, the
    PUBACK table, psycopg's and numpy's state). Measured (issue 21, in-process worker, 10,000
    messages of 10 × 4, load 5–6): 149–157 µs of worker CPU per message at the default,
    111–137 µs with this threshold and the start-up heap frozen (``gc.freeze``). Nothing here
    needs the collector to run sooner: the per-batch garbage has no reference cycles to speak of."""
    gc.collect()
    gc.freeze()
    gen0, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(max(gen0, GC_GEN0_THRESHOLD), max(gen1, 20), max(gen2, 20))


def subscriptions(group: str | None) -> list[str]:
    """Topics of a worker: shared (``$share/{group}/…``) so workers split the stream."""
    topics = [f"{TOPIC_ROOT}/+/+/{kind}" for kind in UPLINK_KINDS]
    return [f"$share/{group}/{t}" for t in topics] if group else topics


def default_client_id(index: int) -> str:
    """Stable across restarts of the same host and slot, so a restarted worker resumes its session."""
    return f"guanjia-ingest-{socket.gethostname()[:40]}-{index}"


@dataclass(slots=True)
class WorkerOptions:
    client_id: str = field(default_factory=lambda: default_client_id(0))
    group: str | None = "guanjia-ingest"
    receive_maximum: int = RECEIVE_MAXIMUM
    batch_points: int = BATCH_POINTS
    batch_messages: int = 500
    batch_wait_s: float = 0.05
    clean_start: bool = False
    policy: Policy = field(default_factory=Policy)
    confirm_window_s: float = CONFIRM_WINDOW_S
    """At most one confirmation flush per this many seconds (see :mod:`cloud.ingest.confirm`)."""
    behind_lag_s: float = BACKLOG_BEHIND_S
    """Broker-side queueing delay above which the retained ``behind`` status goes up (:mod:`cloud.ingest.backlog`)."""
    behind_expiry_s: float = BEHIND_EXPIRY_S
    """MQTT message expiry of that status."""


class IngestWorker:
    def __init__(self, pool: AsyncConnectionPool[Any], mqtt_url: MqttUrl, *, mode: str | None = None,
                 options: WorkerOptions | None = None, metrics: Metrics | None = None,
                 hooks: IngestHooks | None = None, clock: Clock) -> None:
        self.pool = pool
        self.clock: Clock = clock
        self.mqtt_url = mqtt_url
        self.options = options or WorkerOptions()
        self.metrics = metrics or Metrics()
        self.hooks = hooks or IngestHooks()
        self.cache = RegistryCache(pool)
        self.preparer = Preparer(self.cache, self.options.policy)
        self.writer = Writer(mode=mode or "plain", seq_window=self.options.policy.seq_window)
        self._mode_known = mode is not None
        self.inbox: asyncio.Queue[Incoming] = asyncio.Queue()
        self.confirms = ConfirmQueue(window_s=self.options.confirm_window_s)
        self._lag_s = 0.0  # receive-to-commit of the last batch's oldest message
        self.backlog = BacklogEstimate()
        self.status = BehindStatus(self.options.client_id, threshold_s=self.options.behind_lag_s,
                                   expiry_s=self.options.behind_expiry_s)
        self._commits = 0
        self.ready: asyncio.Queue[list[Prepared]] = asyncio.Queue(maxsize=2)
        self.consumer: MqttConsumer | None = None
        self._done = 0  # messages committed and acknowledged (compared with consumer.received)
        self._write_conn: psycopg.AsyncConnection[Any] | None = None
        """The writer's connection, kept between batches (see :meth:`_connection`)."""
        m = self.metrics
        self.m_messages = m.counter("guanjia_ingest_messages_total", "MQTT messages processed, by kind")
        self.m_points = m.counter("guanjia_ingest_points_total", "Telemetry points committed")
        self.m_dupes = m.counter("guanjia_ingest_duplicates_total",
                                 "Redelivered messages skipped by (gateway, incarnation, seq) and content")
        self.m_quarantined = m.counter("guanjia_ingest_quarantined_total",
                                       "Sequenced messages quarantined (seq_conflict, seq_out_of_window), by reason")
        self.m_dead = m.counter("guanjia_ingest_dead_letters_total", "Dead letters written, by reason")
        self.m_retries = m.counter("guanjia_ingest_write_retries_total", "Batch writes retried (database errors)")
        self.m_batch = m.summary("guanjia_ingest_batch_seconds", "Receive-to-commit latency of a batch's first message")
        self.m_confirm = m.counter("guanjia_ingest_confirmations_total",
                                   "Storage confirmations handed to the MQTT client (cmd topic), by outcome: "
                                   "queued, or deferred (client full or down; the seqs stay pending)")
        self.m_behind = m.counter("guanjia_ingest_behind_total", "Confirmation flushes that carried the behind hint")
        m.gauge("guanjia_ingest_confirmations_pending", "Committed seqs not yet handed to the MQTT client",
                source=lambda: self.confirms.size)
        m.gauge("guanjia_ingest_confirmations_unacked", "Confirmations handed to the MQTT client, not yet PUBACKed",
                source=lambda: self.consumer.outstanding if self.consumer is not None else 0)
        m.gauge("guanjia_ingest_lag_seconds", "Receive-to-commit age of the last batch's oldest message",
                source=lambda: self._lag_s)
        m.gauge("guanjia_ingest_backlog_seconds", "Broker-side queueing delay of the last batch (median, skew removed)",
                source=lambda: self.backlog.lag_s)
        m.gauge("guanjia_ingest_behind_status", "1 while the retained behind status is up",
                source=lambda: 1.0 if self.status.behind else 0.0)
        self.m_commit = m.summary("guanjia_ingest_commit_seconds", "Duration of the write transaction")
        m.gauge("guanjia_ingest_queue_depth", "Messages received and not yet prepared", source=self._queued)
        m.gauge("guanjia_ingest_ready_batches", "Prepared batches waiting for the writer", source=self.ready.qsize)
        self.m_connected = m.gauge("guanjia_ingest_broker_connected", "1 when the worker's MQTT session is up")

    async def run(self) -> None:
        """Run until cancelled. On cancel the worker drains: it leaves the share group, commits and
        acknowledges what it holds, then ends its broker session (see :meth:`MqttConsumer.stop`);
        if the drain cannot finish (database down), the session is kept for a restart."""
        loop = asyncio.get_running_loop()
        tune_gc()
        if not self._mode_known:
            self.writer.mode = await self._storage_mode()
        self.consumer = MqttConsumer(self.mqtt_url, self.options.client_id, subscriptions(self.options.group),
                                     self.inbox, loop, receive_maximum=self.options.receive_maximum,
                                     clean_start=self.options.clean_start,
                                     on_state=lambda up: self.m_connected.set(1.0 if up else 0.0),
                                     clock=self.clock)
        self.consumer.start()
        log.info("ingest worker %s started (pid %d)", self.options.client_id, os.getpid())
        drained = False
        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(self._batcher(), name="ingest-batcher"),
                         group.create_task(self._writer(), name="ingest-writer"),
                         group.create_task(self._confirmer(), name="ingest-confirmer"),
                         group.create_task(self._status_task(), name="ingest-behind-status")]
                try:
                    await asyncio.Future()  # until cancelled
                except asyncio.CancelledError:
                    if not any(t.done() for t in tasks):  # a crashed pipeline cannot drain
                        drained = await self._drain()
                    raise
        finally:
            self._clear_status()
            await self.consumer.stop(drained)
            await self._release_connection()

    async def _storage_mode(self) -> str:
        """The database's storage mode (``schema_meta``), waiting for the database if needed:
        partitions are this worker's job on plain PostgreSQL only."""
        backoff = Backoff(initial=0.5, cap=10.0)
        while True:
            try:
                async with self.pool.connection() as conn:
                    return await storage_mode_async(conn)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                delay = backoff.next_delay()
                log.warning("reading the storage mode failed (%s); retrying in %.1fs", str(exc).strip()[:200], delay)
                await asyncio.sleep(delay)

    async def _drain(self, quiet_s: float = 0.5, timeout_s: float = 15.0) -> bool:
        """Unsubscribe, then wait until every received message is acknowledged and none arrived
        for ``quiet_s``. Returns False on timeout."""
        assert self.consumer is not None
        self.consumer.unsubscribe()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while loop.time() < deadline:
            idle = time.monotonic() - self.consumer.last_received >= quiet_s
            # confirmations go out before the session ends (unless the broker is away: then the edge resends)
            confirmed = not self.confirms.size or not self.consumer.connected.is_set()
            if idle and self._done >= self.consumer.received and confirmed:
                log.info("ingest worker %s drained (%d messages)", self.options.client_id, self._done)
                return True
            await asyncio.sleep(0.05)
        log.warning("ingest worker %s could not drain in %.0fs; keeping its broker session",
                    self.options.client_id, timeout_s)
        return False

    # ------------------------------------------------------------------ batcher
    async def _batcher(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            message = await self._next()
            batch: list[Prepared] = []
            points = 0
            deadline = loop.time() + self.options.batch_wait_s
            while True:
                prepared = await self._prepare(message)
                batch.append(prepared)
                points += prepared.points
                if points >= self.options.batch_points or len(batch) >= self.options.batch_messages:
                    break
                try:  # what is already here needs no timer
                    message = self.inbox.get_nowait()
                    continue
                except asyncio.QueueEmpty:
                    pass
                remaining = deadline - loop.time()
                if remaining <= 0 or (self.consumer is not None and self.consumer.saturated):
                    break  # (saturated: nothing more arrives before this batch's acks)
                try:
                    async with asyncio.timeout(remaining):
                        message = await self._next()
                except TimeoutError:
                    break
            await self.ready.put(self._finish(batch))

    async def _next(self) -> Incoming:
        """The next received message (the consumer fills the inbox on this loop: no hand-off)."""
        return await self.inbox.get()

    def _finish(self, batch: list[Prepared]) -> list[Prepared]:
        """COPY rows for the batch's fast-path messages, encoded together (:meth:`Preparer.finish`);
        a bug there turns those messages into ``internal_error`` dead letters, as in :meth:`_prepare`."""
        try:
            self.preparer.finish(batch)
        except Exception as exc:
            log.exception("finishing a batch of %d messages failed", len(batch))
            return [p if p.source is None else
                    Prepared(p.incoming, "dead", dead=[dead_letter(p.incoming, "internal_error", repr(exc))])
                    for p in batch]
        return batch

    async def _prepare(self, message: Incoming) -> Prepared:
        backoff: Backoff | None = None  # built on the first failure only: this runs per message
        while True:
            try:
                return await self.preparer.prepare(message)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                backoff = backoff or Backoff(initial=0.2, cap=10.0)
                delay = backoff.next_delay()
                log.warning("registry lookup failed (%s); retrying in %.1fs", str(exc).strip()[:200], delay)
                await asyncio.sleep(delay)
            except Exception as exc:  # a bug must not kill ingest: keep the evidence instead
                log.exception("preparing a message from %s failed", message.topic[:200])
                return Prepared(message, "dead", dead=[dead_letter(message, "internal_error", repr(exc))])

    # ------------------------------------------------------------------ writer
    async def _writer(self) -> None:
        while True:
            batch = await self.ready.get()
            # backpressure: while confirmations cannot go out, do not commit (and ack) more
            while self.confirms.full:
                self._flush_confirms(force=True)
                await asyncio.sleep(CONFIRM_FLUSH_S)
            # shielded: a cancel (shutdown) lets the current commit and its acks complete
            task = asyncio.ensure_future(self._commit(batch))
            try:
                await asyncio.shield(task)
            except asyncio.CancelledError:
                try:
                    async with asyncio.timeout(15):
                        await task
                except (TimeoutError, Exception):
                    task.cancel()
                raise

    async def _commit(self, batch: list[Prepared]) -> None:
        results = await self._write_with_retry(batch)
        assert self.consumer is not None
        self.consumer.ack_many([p.incoming for p in batch])
        self._done += len(batch)
        self._confirm(batch)
        # receive-to-commit: both ends on the same clock as received_ms
        now_ms = to_ms(self.clock.now())
        self._lag_s = (now_ms - min(p.incoming.received_ms for p in batch)) / 1000
        self._commits += 1
        self.backlog.observe([(p.gateway_id, p.sent_at_ms, p.incoming.received_ms) for p in batch], now_ms)
        self.m_batch.observe(self._lag_s)
        kinds: dict[str, int] = {}
        for p in batch:  # one counter update per kind and batch, not per message
            kinds[p.kind] = kinds.get(p.kind, 0) + 1
        for kind, count in kinds.items():
            self.m_messages.inc(count, kind=kind)
        for result in results:
            self.m_points.inc(result.points)
            if result.duplicates:
                self.m_dupes.inc(len(result.duplicates))
            for d in result.dead:
                self.m_dead.inc(reason=d.reason)
            if result.conflicts:
                self.m_quarantined.inc(len(result.conflicts), reason="seq_conflict")
            if result.held:
                self.m_quarantined.inc(len(result.held), reason="seq_out_of_window")
            await self.hooks.fire(self.hooks.alarms, result.alarm_ids)
            await self.hooks.fire(self.hooks.events, result.event_ids)
            if self.hooks.telemetry:
                self.hooks.fire_telemetry([b for p in result.new if (b := p.telemetry_batch()) is not None])

    def _confirm(self, batch: list[Prepared]) -> None:
        """Tell the gateways what is now stored: queue the batch's seqs and flush if the
        confirmation window allows (else the confirmer does at its end). Non-blocking; never
        delays or fails the acks."""
        try:
            self.confirms.add(batch)
        except Exception:  # a bug here must not stop ingest
            log.exception("queueing storage confirmations failed")
        self._flush_confirms()

    def _queued(self) -> int:
        """Messages received and not yet prepared."""
        return self.inbox.qsize()

    @property
    def behind(self) -> bool:
        """The hint for the edges (see the module docstring)."""
        return (self._queued() * 2 >= self.options.receive_maximum or self._lag_s > BEHIND_LAG_S
                or self.confirms.stalled or self.status.behind)

    def _flush_confirms(self, *, force: bool = False) -> None:
        """Hand pending confirmations to the MQTT client when the confirmation window allows
        (:meth:`ConfirmQueue.due`, on the event loop's monotonic clock), or now with ``force``."""
        if self.consumer is None or not self.confirms.size:
            return
        try:
            behind = self.behind
            if not self.confirms.due(asyncio.get_running_loop().time(), behind=behind) and not force:
                return
            sent_before = self.confirms.sent
            outcome = self.confirms.flush(self.consumer.publish, to_ms(self.clock.now()), behind=behind)
            if self.confirms.sent > sent_before:
                self.m_confirm.inc(self.confirms.sent - sent_before, outcome="queued")
                if behind:
                    self.m_behind.inc()
            if outcome is not Sent.QUEUED:
                self.m_confirm.inc(outcome="deferred")
        except Exception:  # a bug here must not stop ingest
            log.exception("publishing storage confirmations failed")

    async def _confirmer(self) -> None:
        """Flushes what waits for its window's end, and retries what a flush left pending (the
        MQTT client was full or down)."""
        loop = asyncio.get_running_loop()
        while True:
            wait = self.confirms.next_due(loop.time(), behind=self.behind) if self.confirms.size else CONFIRM_FLUSH_S
            await asyncio.sleep(min(CONFIRM_FLUSH_S, max(0.005, wait)))
            self._flush_confirms()

    async def _status_task(self) -> None:
        """The retained ``behind`` status, every :data:`STATUS_REFRESH_S` (see :mod:`cloud.ingest.backlog`).

        No commit since the last tick: the lag is 0 (nothing queued reached us) unless messages
        are held uncommitted — held across ticks for the threshold, the worker is *stalled*
        (database down, a commit hanging) and behind too."""
        topic = ingest_status_topic(self.options.client_id)
        loop = asyncio.get_running_loop()
        commits = self._commits
        stall_since: float | None = None
        while True:
            await asyncio.sleep(STATUS_REFRESH_S)
            consumer = self.consumer
            if consumer is None:
                continue
            now = loop.time()
            fresh = self._commits != commits
            commits = self._commits
            held = consumer.received > self._done
            stall_since = None if fresh or not held else (stall_since if stall_since is not None else now)
            stalled = stall_since is not None and now - stall_since >= self.options.behind_lag_s
            message = self.status.tick(self.backlog.lag_s if fresh else 0.0, to_ms(self.clock.now()),
                                       stalled=stalled)
            if message is not None and consumer.publish(topic, message.payload, retain=True,
                                                        expiry_s=message.expiry_s) is Sent.QUEUED:
                self.status.sent(message)

    def _clear_status(self) -> None:
        """On the way out: clear a ``behind`` status this worker put up (written before the
        DISCONNECT; should it not arrive, the message expiry removes it)."""
        message = self.status.clear()
        if message is not None and self.consumer is not None:
            self.consumer.publish(ingest_status_topic(self.options.client_id), message.payload, retain=True)

    async def _connection(self) -> psycopg.AsyncConnection[Any]:
        """The writer's connection: taken from the pool once and kept while it works.

        Why not a checkout per batch: the pool checks each connection it hands out (a round
        trip, so that a restarted database never hands out a dead one) — measured ~6 % of a busy
        worker's CPU (issue 21, py-spy, 500 × 10 × 4 burst). A kept connection that fails is
        given back (:meth:`_release_connection`; the pool discards a broken one) and the batch is
        retried on a freshly checked one, so a database restart costs what it cost before."""
        if self._write_conn is None or self._write_conn.closed:
            self._write_conn = await self.pool.getconn()
        return self._write_conn

    async def _release_connection(self) -> None:
        conn, self._write_conn = self._write_conn, None
        if conn is not None:
            try:
                await self.pool.putconn(conn)
            except Exception:  # the pool closed first: nothing to give back to
                await conn.close()

    async def _write_with_retry(self, batch: list[Prepared]) -> list[WriteResult]:
        backoff = Backoff(initial=0.2, cap=10.0)
        while True:
            started = time.perf_counter()
            try:
                conn = await self._connection()
                try:
                    result = await self.writer.write(conn, batch)
                except psycopg.OperationalError:
                    await self._release_connection()
                    raise
                self.m_commit.observe(time.perf_counter() - started)
                return [result]
            except (psycopg.OperationalError, PoolTimeout) as exc:
                self.m_retries.inc()
                delay = backoff.next_delay()
                log.warning("writing %d messages failed (%s); retrying in %.1fs", len(batch),
                            str(exc).strip()[:200], delay)
                await asyncio.sleep(delay)
            except psycopg.Error as exc:
                if len(batch) > 1:
                    log.warning("database rejected a batch of %d (%s); retrying message by message", len(batch),
                                str(exc).strip()[:200])
                    results: list[WriteResult] = []
                    for one in batch:
                        results += await self._write_with_retry([one])
                    return results
                p = batch[0]
                log.error("database rejected a message from %s: %s", p.incoming.topic[:200], str(exc).strip()[:300])
                rejected = Prepared(p.incoming, "dead", dead=[
                    dead_letter(p.incoming, "storage_rejected", str(exc).strip())])
                return await self._write_with_retry([rejected])
