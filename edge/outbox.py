"""The durable outbox: every reading, alarm and event is committed to SQLite before it is published.

Why this shape (peer gateways lose data exactly here — memory buffers dropped while offline, SQLite
stores wiped on reconnect, SQLite stores delivering 40 % of 10 msg/s):

* **Group commit.** Producers append to in-memory lists on the event loop (no I/O); a flusher
  commits them every ``flush_interval_s`` as whole wire messages — one row per batch of up to
  ``batch_max_items`` readings — so SQLite does a handful of transactions a second whatever the
  reading rate. Alarms wake the flusher at once. One dedicated thread owns the connection.
* **Sequence at enqueue.** Each row's primary key *is* the wire ``seq``: assigned once in the same
  transaction that stores the batch, persisted (``meta.next_seq``) so it never goes backwards
  across restarts or after the table empties, and reused on every resend. The cloud deduplicates
  on ``(gateway, incarnation, seq)`` (see **Incarnation** below).
* **Incarnation.** Each outbox file has a random 64-bit id, created with the file and kept in
  ``meta.incarnation`` (a salvaged file keeps it when its ``meta`` is readable). Every message
  carries it, so the cloud deduplicates on ``(gateway, incarnation, seq)``: a wiped or replaced
  outbox (new SD card, deleted ``.run/``) is a new incarnation whose seqs start at 1 again
  without colliding with the old box's numbers (which made the cloud drop every new batch as a
  duplicate). A file that predates incarnations (``next_seq`` but no ``incarnation``) keeps
  talking as ``legacy``, the cloud's name for the old numbering, so its pending batches stay
  duplicates of what the cloud already has.
* **Delete after storage (end-to-end ack).** A broker PUBACK is not proof of storage (Mosquitto
  drops messages of a shared subscription it failed to restore after a restart). With
  ``end_to_end_ack`` the uplink marks a batch *sent* after PUBACK (:meth:`Outbox.mark_sent`, in
  memory only) and the row is deleted when the cloud's ``stored`` confirmation names its seq
  (:meth:`Outbox.confirm`); a sent batch not confirmed within its timeout is handed back for a
  resend with the same seq (:meth:`Outbox.expired`). After a restart every row is pending again.
  While an ingest worker's retained ``behind`` status is up (:meth:`Outbox.hold`, issue 21) due
  batches are not resent but re-armed one jittered timeout later, for at most ``hold_max_s`` after
  their first send — the cloud has them queued at the broker, a resend would only add duplicates.
  Without end-to-end ack the uplink calls :meth:`Outbox.ack` after PUBACK. Deletes happen in the
  next group commit; a crash before it resends the same seq (a duplicate the cloud drops).
* **Priorities.** alarms (0) < events (1) < telemetry (2); the uplink reads by priority, oldest
  first within each.
* **Bounded disk** (``max_bytes`` of stored payload): when a commit would exceed it, the oldest
  *telemetry* rows are deleted until it fits. Alarms and events are never dropped (they are tiny;
  if they alone exceed the limit the limit is exceeded and said so). Each drop is counted
  (``dropped_messages``/``dropped_readings``), reported as an ``outbox_dropped`` event and raises
  an ``outbox_overflow`` alarm on the gateway, cleared when usage falls below half the limit.
* **Bounded memory.** At most ``max_pending`` readings wait for a commit; past that the oldest
  pending readings are dropped and counted (``dropped_pending``) — only possible if the disk
  stalls for long.
* **Rejects and audit** tables keep malformed device payloads and command outcomes (bounded).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from edge.errors import OutboxError
from edge.outbox_salvage import (
    SEQ_BLOCK,
    SalvageReport,
    incarnation_name,
    is_healthy,
    new_incarnation,
    read_ceiling,
    salvage,
    write_ceiling,
)
from guanjia.core.wire import MAX_SEQ

log = logging.getLogger(__name__)

PRIORITY: Final = {"alarms": 0, "events": 1, "telemetry": 2}
KIND_BY_PRIORITY: Final = {v: k for k, v in PRIORITY.items()}
MAX_BODY_BYTES: Final = 900_000
"""Keep each message under the wire's 1 MiB limit, with room for the envelope."""
MAX_REJECTS: Final = 10_000
MAX_AUDIT: Final = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    seq        INTEGER PRIMARY KEY,   -- the wire seq: assigned once, kept across resends
    kind       TEXT    NOT NULL,      -- telemetry | alarms | events
    priority   INTEGER NOT NULL,      -- 0 alarms, 1 events, 2 telemetry
    created_ms INTEGER NOT NULL,
    n_items    INTEGER NOT NULL,
    body       BLOB    NOT NULL       -- JSON array of wire items
);
CREATE INDEX IF NOT EXISTS messages_by_priority ON messages (priority, seq);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS counters (key TEXT PRIMARY KEY, value INTEGER NOT NULL);  -- device-side counts
CREATE TABLE IF NOT EXISTS rejects (
    id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, source TEXT NOT NULL, topic TEXT NOT NULL,
    reason TEXT NOT NULL, payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL, command_id TEXT NOT NULL, device TEXT NOT NULL,
    point TEXT NOT NULL, value TEXT NOT NULL, outcome TEXT NOT NULL, reason TEXT NOT NULL
);
"""


def now_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class StoredMessage:
    seq: int
    kind: str
    priority: int
    created_ms: int
    n_items: int
    body: bytes


@dataclass(slots=True)
class _Counts:
    messages: list[int] = field(default_factory=lambda: [0, 0, 0])
    items: list[int] = field(default_factory=lambda: [0, 0, 0])
    bytes: int = 0


@dataclass(slots=True)
class _Sent:
    priority: int
    n_items: int
    deadline: float
    timeout_s: float
    first_sent: float


@dataclass(slots=True)
class _Work:
    readings: list[dict[str, Any]]
    alarms: list[dict[str, Any]]
    events: list[dict[str, Any]]
    acks: list[int]
    ack_ranges: list[tuple[int, int]]
    rejects: list[tuple[int, str, str, str, bytes]]
    audits: list[tuple[int, str, str, str, str, str, str]]
    counters: dict[str, int] = field(default_factory=dict)

    def empty(self) -> bool:
        return not (self.readings or self.alarms or self.events or self.acks or self.ack_ranges or self.rejects
                    or self.audits or self.counters)


@dataclass(slots=True)
class _CommitResult:
    new_seqs: list[int]
    dropped_messages: int
    dropped_items: int
    deleted_seqs: list[int]


class Outbox:
    """SQLite (WAL) store-and-forward queue. Use as ``async with Outbox(...) as outbox:``."""

    def __init__(
        self,
        path: Path,
        *,
        gateway: str,
        max_bytes: int = 512 * 1024 * 1024,
        flush_interval_s: float = 0.25,
        batch_max_items: int = 1000,
        max_pending: int = 200_000,
        synchronous: str = "full",
        clock: Callable[[], int] = now_ms,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.path = Path(path)
        self.gateway = gateway
        self.max_bytes = max_bytes
        self.flush_interval_s = flush_interval_s
        self.batch_max_items = batch_max_items
        self.max_pending = max_pending
        self.synchronous = synchronous
        self.clock = clock
        self.monotonic = monotonic
        """Seconds on a monotonic clock, for resend timers and holds (injected: tests pin it)."""
        self._rng = rng or random.Random()
        self._holds: dict[str, float] = {}
        """Ingest ``behind`` statuses in force: their topic → until when (:attr:`monotonic`)."""
        self.wake = asyncio.Event()
        """Set after every commit that stored new messages (the uplink waits on it)."""
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox")
        self._db: sqlite3.Connection | None = None
        self._next_seq = 1
        self.incarnation = ""
        """This outbox file's incarnation id as it goes on the wire (set on open)."""
        self._counts = _Counts()
        self._work = _Work([], [], [], [], [], [], [])
        self._urgent = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._commit_lock = asyncio.Lock()
        self._overflow_active = False
        self.salvage_report: SalvageReport | None = None
        self._reserved = 0
        """Set when the file was damaged and rebuilt on open (see :mod:`edge.outbox_salvage`)."""
        self._sent: dict[int, _Sent] = {}
        """Batches PUBACKed by the broker and not yet confirmed stored by the cloud (in memory)."""
        self._sent_items = 0
        self._counters: dict[str, int] = {}
        """Counts the agent keeps for devices that do not count themselves (see :meth:`set_counter`)."""
        # metrics
        self.commits = 0
        self.dropped_messages = 0
        self.dropped_readings = 0
        self.dropped_pending = 0
        self.rejects_total = 0
        self.commit_time_ms_max = 0.0
        self.confirmed = 0
        self.resends = 0
        self.postponed = 0  # behind hints taken (resend timers restarted)
        self.held = 0  # resends held back by an ingest's behind status

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Outbox:
        await self._run(self._open)
        if (report := self.salvage_report) is not None:
            self.add_event({"device": self.gateway, "type": "outbox_corrupt", "ts": self.clock(),
                            "data": {"error": report.error[:200], "salvaged_messages": report.salvaged,
                                     "lost_messages": report.lost_messages,
                                     "lost_seq_ranges": report.lost_ranges[:100],
                                     "next_seq_known": report.next_seq_known,
                                     "incarnation": self.incarnation,
                                     "incarnation_kept": report.incarnation_kept,
                                     "damaged_file": str(report.moved_to)}})
        self._task = asyncio.create_task(self._flusher(), name="outbox-flusher")
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        try:
            await self.flush()
        finally:
            await self._run(self._close)
            self._executor.shutdown(wait=True)

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    def _damage(self) -> str | None:
        """What is wrong with an existing outbox file (``None``: nothing, or no file yet)."""
        if not self.path.exists() or self.path.stat().st_size == 0:
            return None
        try:
            probe = sqlite3.connect(self.path)
        except sqlite3.Error as exc:
            return str(exc)
        try:
            return is_healthy(probe)
        finally:
            probe.close()

    def _open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if (problem := self._damage()) is not None:
                self.salvage_report = salvage(self.path, _SCHEMA, problem)
            db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute(f"PRAGMA synchronous={'FULL' if self.synchronous == 'full' else 'NORMAL'}")
            db.execute("PRAGMA journal_size_limit=67108864")
            db.executescript(_SCHEMA)
            row = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
            max_seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()[0]
            inc = db.execute("SELECT value FROM meta WHERE key='incarnation'").fetchone()
            if inc is None:
                # a new file gets a new incarnation; a file of an older agent stays "legacy" (0)
                number = 0 if (row is not None or max_seq) else new_incarnation()
                db.execute("INSERT INTO meta VALUES ('incarnation', ?)", (number,))
                inc = (number,)
            self.incarnation = incarnation_name(int(inc[0]))
            self._next_seq = max(int(row[0]) if row else 1, max_seq + 1, 1)
            self._reserved = read_ceiling(self.path) or 0
            for prio, count, items, size in db.execute(
                "SELECT priority, COUNT(*), SUM(n_items), SUM(LENGTH(body)) FROM messages GROUP BY priority"
            ):
                self._counts.messages[prio] = count
                self._counts.items[prio] = items or 0
                self._counts.bytes += size or 0
            self._counters = dict(db.execute("SELECT key, value FROM counters").fetchall())
            for key, value in db.execute("SELECT key, value FROM meta"):
                if key == "dropped_messages":
                    self.dropped_messages = value
                elif key == "dropped_readings":
                    self.dropped_readings = value
            self._db = db
        except sqlite3.Error as exc:
            raise OutboxError(f"cannot open outbox {self.path}: {exc}") from exc
        log.info("outbox %s: incarnation %s, %d messages pending, next seq %d", self.path, self.incarnation,
                 sum(self._counts.messages), self._next_seq)

    def _close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._db.close()
            self._db = None

    # ------------------------------------------------------------------ producers (event loop, no I/O)
    def add_reading(self, item: dict[str, Any]) -> None:
        work = self._work
        work.readings.append(item)
        if len(work.readings) > self.max_pending:
            drop = len(work.readings) - self.max_pending
            del work.readings[:drop]
            self.dropped_pending += drop
        if len(work.readings) >= self.batch_max_items * 4:
            self._urgent.set()

    def add_alarm(self, item: dict[str, Any]) -> None:
        self._work.alarms.append(item)
        self._urgent.set()

    def add_event(self, item: dict[str, Any]) -> None:
        self._work.events.append(item)
        self._urgent.set()

    def add_reject(self, source: str, topic: str, reason: str, payload: bytes) -> None:
        self.rejects_total += 1
        self._work.rejects.append((self.clock(), source, topic, reason[:500], payload[:65536]))

    def add_audit(self, command_id: str, device: str, point: str, value: Any, outcome: str, reason: str) -> None:
        self._work.audits.append(
            (self.clock(), command_id, device, point, orjson.dumps(value).decode(), outcome, reason))
        self._urgent.set()

    def counter(self, key: str) -> int:
        """The last value of an agent-kept counter (0 for one never set), as of the last commit or later."""
        return self._counters.get(key, 0)

    def set_counter(self, key: str, value: int) -> None:
        """Keep a counter the agent maintains for a device (e.g. an access controller's passages, which
        the controller reports as events, not as a count) across restarts.

        The value is written in the same transaction as the readings produced with it, so after a
        restart the count goes on from the last reading stored: the cloud never sees the counter
        fall back to 0, which it would read as a meter reset and lose that hour's increase.
        """
        self._counters[key] = value
        self._work.counters[key] = value

    def ack(self, seq: int) -> None:
        """Called after the broker's PUBACK when end-to-end ack is off; the row is deleted in the next
        group commit (with end-to-end ack the uplink calls :meth:`mark_sent` instead)."""
        self._work.acks.append(seq)

    # ------------------------------------------------------------------ end-to-end acknowledgement
    def mark_sent(self, seq: int, priority: int, n_items: int, timeout_s: float, max_timeout_s: float = 600.0) -> None:
        """The broker PUBACKed ``seq``: keep the row until the cloud confirms it, resend after
        ``timeout_s`` (doubled, up to ``max_timeout_s``, each time the same batch is sent again)."""
        entry = self._sent.get(seq)
        if entry is None:
            now = self.monotonic()
            self._sent[seq] = _Sent(priority, n_items, now + timeout_s, timeout_s, now)
            self._sent_items += n_items
        else:
            entry.timeout_s = min(max_timeout_s, max(timeout_s, entry.timeout_s * 2))
            entry.deadline = self.monotonic() + entry.timeout_s

    def postpone(self) -> int:
        """The cloud says it is behind (the ``behind`` hint of a ``stored`` confirmation): restart
        every sent batch's resend timer, without doubling it. Returns how many were postponed.

        Why restart and not double: a cloud that is behind still confirms, only late; as long as
        confirmations keep arriving the batches it has not reached yet are queued at the broker,
        and resending them would only add duplicates to its backlog. When confirmations stop (the
        cloud is gone, or dropped them) no hint arrives and the timers run out as before."""
        now = self.monotonic()
        n = 0
        for entry in self._sent.values():
            if entry.deadline != float("inf"):  # one already due is being resent
                entry.deadline = max(entry.deadline, now + entry.timeout_s)
                n += 1
        self.postponed += 1
        return n

    def forget_sent(self) -> None:
        """A new uplink session resends every stored row from the start: nothing is *sent* any more
        (so overdue batches are not resent twice, by the session start and by their timeout)."""
        self._sent.clear()
        self._sent_items = 0

    def is_sent(self, seq: int) -> bool:
        return seq in self._sent

    def confirm(self, ranges: Iterable[tuple[int, int]]) -> int:
        """The cloud stored these seqs (inclusive ranges): delete them in the next group commit.
        Rows never marked sent are deleted too (a confirmation may overtake the PUBACK, or come
        after a restart). Returns how many sent batches this confirmed."""
        hits = 0
        top = self._next_seq - 1
        for first, upto in ranges:
            # a seq not handed out yet cannot be stored: a confirmation naming one (a batch forged with
            # this gateway's credentials and stored) must not delete the real batch when it is created
            last = min(upto, top)
            if last < first:
                continue
            self._work.ack_ranges.append((first, last))
            if last - first < 4 * len(self._sent):
                seqs: Iterable[int] = range(first, last + 1)
            else:
                seqs = [s for s in self._sent if first <= s <= last]
            for seq in seqs:
                if self._forget(seq):
                    hits += 1
        self.confirmed += hits
        self._urgent.set()
        return hits

    def _forget(self, seq: int) -> bool:
        entry = self._sent.pop(seq, None)
        if entry is None:
            return False
        self._sent_items -= entry.n_items
        return True

    def hold(self, source: str, seconds: float) -> None:
        """An ingest worker (status topic ``source``) says it is behind: hold resends for
        ``seconds`` from now (by this clock: the status's own expiry, no clock comparison)."""
        self._holds[source] = self.monotonic() + seconds

    def release(self, source: str) -> None:
        """That worker cleared its status (caught up)."""
        self._holds.pop(source, None)

    @property
    def cloud_behind(self) -> bool:
        """Some ingest worker's ``behind`` status is in force."""
        if not self._holds:
            return False
        now = self.monotonic()
        for source in [s for s, until in self._holds.items() if until <= now]:
            del self._holds[source]
        return bool(self._holds)

    def expired(self, limit: int = 64, *, hold_max_s: float = 600.0) -> list[int]:
        """Sent batches whose confirmation is overdue, oldest seq first: they go back to pending
        (stay tracked with a doubled timeout once resent).

        While :attr:`cloud_behind`, an overdue batch first sent less than ``hold_max_s`` ago is
        re-armed instead: one timeout (not doubled) times 1–1.25 later. Why jittered: when the
        status ends, the held batches of every edge would otherwise fall due in the same second,
        the resend storm the status exists to prevent; the cap keeps a status that is never
        cleared (a cloud bug) from holding a batch for ever."""
        now = self.monotonic()
        if self.cloud_behind:
            for entry in self._sent.values():
                if entry.deadline <= now and now - entry.first_sent < hold_max_s:
                    entry.deadline = now + entry.timeout_s * self._rng.uniform(1.0, 1.25)
                    self.held += 1
        due = sorted(seq for seq, e in self._sent.items() if e.deadline <= now)[:limit]
        for seq in due:
            self._sent[seq].deadline = float("inf")  # due for resend; mark_sent re-arms it
        self.resends += len(due)
        return due

    async def fetch_seqs(self, seqs: list[int]) -> list[StoredMessage]:
        """The stored rows among ``seqs`` (confirmed or dropped ones are gone; they are forgotten)."""
        rows: list[StoredMessage] = await self._run(self._fetch_seqs, seqs)
        found = {r.seq for r in rows}
        for seq in seqs:
            if seq not in found:
                self._forget(seq)
        return rows

    def _fetch_seqs(self, seqs: list[int]) -> list[StoredMessage]:
        db = self._db
        if db is None:
            raise OutboxError("outbox is closed")
        if not seqs:
            return []
        try:
            rows = db.execute(
                f"SELECT seq, kind, priority, created_ms, n_items, body FROM messages WHERE seq IN "
                f"({','.join('?' * len(seqs))}) ORDER BY priority, seq", seqs).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox read failed: {exc}") from exc
        return [StoredMessage(*row) for row in rows]

    # ------------------------------------------------------------------ commit
    async def _flusher(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval_s):
                    await self._urgent.wait()
            try:
                await self.flush()
            except OutboxError:
                log.exception("outbox commit failed; retrying")
                await asyncio.sleep(1.0)

    async def flush(self) -> None:
        """Commit everything produced so far (returns once it is on disk)."""
        async with self._commit_lock:
            self._urgent.clear()
            work, self._work = self._work, _Work([], [], [], [], [], [], [])
            if work.empty():
                return
            started = time.perf_counter()
            try:
                result: _CommitResult = await self._run(self._commit, work)
            except BaseException:
                # nothing was committed: put the work back in front so it is retried, not lost
                self._work.readings[:0] = work.readings
                self._work.alarms[:0] = work.alarms
                self._work.events[:0] = work.events
                self._work.acks[:0] = work.acks
                self._work.ack_ranges[:0] = work.ack_ranges
                self._work.rejects[:0] = work.rejects
                self._work.audits[:0] = work.audits
                self._work.counters = {**work.counters, **self._work.counters}
                raise
            self.commits += 1
            self.commit_time_ms_max = max(self.commit_time_ms_max, (time.perf_counter() - started) * 1000)
            if result.new_seqs:
                self.wake.set()
            for seq in result.deleted_seqs:
                self._forget(seq)
            if result.dropped_messages:
                self._on_dropped(result.dropped_messages, result.dropped_items)
            elif self._overflow_active and self._counts.bytes < self.max_bytes // 2:
                self._overflow_active = False
                self.add_alarm(self._overflow_alarm("clear"))

    def _on_dropped(self, messages: int, items: int) -> None:
        log.warning("outbox full (%d bytes > %d): dropped the %d oldest telemetry messages (%d readings)",
                    self._counts.bytes, self.max_bytes, messages, items)
        self.add_event({"device": self.gateway, "type": "outbox_dropped", "ts": self.clock(),
                        "data": {"messages": messages, "readings": items, "max_bytes": self.max_bytes,
                                 "dropped_readings_total": self.dropped_readings}})
        if not self._overflow_active:
            self._overflow_active = True
            self.add_alarm(self._overflow_alarm("raise"))

    def _overflow_alarm(self, state: str) -> dict[str, Any]:
        return {"device": self.gateway, "rule": "outbox_overflow", "state": state, "severity": "major",
                "ts": self.clock(), "value": self.dropped_readings, "work_order": False, "labels": {},
                "message": f"{self.gateway}: outbox disk limit reached, oldest telemetry dropped"
                if state == "raise" else f"{self.gateway}: outbox back under its disk limit"}

    def _chunks(self, items: list[dict[str, Any]]) -> Iterable[tuple[int, bytes]]:
        for start in range(0, len(items), self.batch_max_items):
            yield from self._encode(items[start:start + self.batch_max_items])

    def _encode(self, items: list[dict[str, Any]]) -> Iterable[tuple[int, bytes]]:
        body = orjson.dumps(items)
        if len(body) > MAX_BODY_BYTES and len(items) > 1:
            half = len(items) // 2
            yield from self._encode(items[:half])
            yield from self._encode(items[half:])
        else:
            yield len(items), body

    def _commit(self, work: _Work) -> _CommitResult:
        db = self._db
        if db is None:
            raise OutboxError("outbox is closed")
        created = self.clock()
        new_seqs: list[int] = []
        next_seq = self._next_seq
        counts = _Counts(list(self._counts.messages), list(self._counts.items), self._counts.bytes)
        dropped_messages = dropped_items = 0
        deleted_seqs: list[int] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                for kind, items in (("alarms", work.alarms), ("events", work.events), ("telemetry", work.readings)):
                    prio = PRIORITY[kind]
                    for n_items, body in self._chunks(items):
                        db.execute("INSERT INTO messages VALUES (?, ?, ?, ?, ?, ?)",
                                   (next_seq, kind, prio, created, n_items, body))
                        new_seqs.append(next_seq)
                        next_seq += 1
                        counts.messages[prio] += 1
                        counts.items[prio] += n_items
                        counts.bytes += len(body)
                if new_seqs:
                    db.execute("INSERT OR REPLACE INTO meta VALUES ('next_seq', ?)", (next_seq,))
                    if next_seq > self._reserved:  # durable before the seqs are: see outbox_salvage
                        self._reserved = next_seq + SEQ_BLOCK
                        write_ceiling(self.path, self._reserved)
                for seq in work.acks:
                    row = db.execute("DELETE FROM messages WHERE seq = ? RETURNING priority, n_items, LENGTH(body)",
                                     (seq,)).fetchone()
                    if row is not None:
                        counts.messages[row[0]] -= 1
                        counts.items[row[0]] -= row[1]
                        counts.bytes -= row[2]
                for first, last in work.ack_ranges:
                    for prio, n_items, size in db.execute(
                            "DELETE FROM messages WHERE seq BETWEEN ? AND ? RETURNING priority, n_items, LENGTH(body)",
                            (first, last)):
                        counts.messages[prio] -= 1
                        counts.items[prio] -= n_items
                        counts.bytes -= size
                while counts.bytes > self.max_bytes and counts.messages[2] > 0:
                    rows = db.execute(
                        "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages WHERE priority = 2 "
                        "ORDER BY seq LIMIT 16) RETURNING seq, n_items, LENGTH(body)").fetchall()
                    for seq, n_items, size in rows:
                        deleted_seqs.append(seq)
                        counts.messages[2] -= 1
                        counts.items[2] -= n_items
                        counts.bytes -= size
                        dropped_messages += 1
                        dropped_items += n_items
                    if not rows:
                        break
                if dropped_messages:
                    db.execute("INSERT INTO meta VALUES ('dropped_messages', ?) ON CONFLICT(key) DO UPDATE "
                               "SET value = value + excluded.value", (dropped_messages,))
                    db.execute("INSERT INTO meta VALUES ('dropped_readings', ?) ON CONFLICT(key) DO UPDATE "
                               "SET value = value + excluded.value", (dropped_items,))
                if work.rejects:
                    db.executemany("INSERT INTO rejects (ts_ms, source, topic, reason, payload) VALUES (?,?,?,?,?)",
                                   work.rejects)
                    db.execute("DELETE FROM rejects WHERE id <= (SELECT MAX(id) FROM rejects) - ?", (MAX_REJECTS,))
                if work.counters:
                    db.executemany("INSERT OR REPLACE INTO counters (key, value) VALUES (?, ?)",
                                   list(work.counters.items()))
                if work.audits:
                    db.executemany("INSERT INTO audit (ts_ms, command_id, device, point, value, outcome, reason) "
                                   "VALUES (?,?,?,?,?,?,?)", work.audits)
                    db.execute("DELETE FROM audit WHERE id <= (SELECT MAX(id) FROM audit) - ?", (MAX_AUDIT,))
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise
        except (sqlite3.Error, OSError) as exc:
            raise OutboxError(f"outbox commit failed: {exc}") from exc
        self._next_seq = next_seq
        self._counts = counts
        self.dropped_messages += dropped_messages
        self.dropped_readings += dropped_items
        return _CommitResult(new_seqs, dropped_messages, dropped_items, deleted_seqs)

    # ------------------------------------------------------------------ consumer
    async def fetch(self, priority: int, after: int, upto: int | None = None, limit: int = 32) -> list[StoredMessage]:
        """Stored messages of one priority with ``after < seq <= upto``, oldest first."""
        result: list[StoredMessage] = await self._run(self._fetch, priority, after, upto, limit)
        return result

    def _fetch(self, priority: int, after: int, upto: int | None, limit: int) -> list[StoredMessage]:
        db = self._db
        if db is None:
            raise OutboxError("outbox is closed")
        try:
            rows = db.execute(
                "SELECT seq, kind, priority, created_ms, n_items, body FROM messages "
                "WHERE priority = ? AND seq > ? AND seq <= ? ORDER BY seq LIMIT ?",
                (priority, after, upto if upto is not None else MAX_SEQ, limit)).fetchall()
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox read failed: {exc}") from exc
        return [StoredMessage(*row) for row in rows]

    @property
    def last_seq(self) -> int:
        """The highest seq committed so far (0 if none)."""
        return self._next_seq - 1

    def pending_readings(self) -> int:
        return len(self._work.readings)

    def stats(self) -> dict[str, int | float]:
        c = self._counts
        return {
            "alarms_messages": c.messages[0], "events_messages": c.messages[1], "telemetry_messages": c.messages[2],
            "alarms_items": c.items[0], "events_items": c.items[1], "telemetry_readings": c.items[2],
            "bytes": c.bytes, "max_bytes": self.max_bytes, "pending_in_memory": len(self._work.readings),
            "last_seq": self.last_seq, "commits": self.commits, "dropped_messages": self.dropped_messages,
            "dropped_readings": self.dropped_readings, "dropped_pending": self.dropped_pending,
            "rejects": self.rejects_total, "commit_time_ms_max": round(self.commit_time_ms_max, 2),
            "unconfirmed_messages": len(self._sent), "unconfirmed_items": self._sent_items,
            "confirmed": self.confirmed, "resends": self.resends, "resends_held": self.held,
        }

    def depth(self) -> int:
        """Messages on disk, pending and sent-but-unconfirmed alike."""
        return sum(self._counts.messages)

    def unconfirmed(self) -> int:
        """Messages the broker accepted that the cloud has not yet confirmed stored."""
        return len(self._sent)


def read_stats(path: Path) -> dict[str, Any]:
    """Figures of an outbox file, read-only (for ``guanjia edge outbox stats`` while the agent runs)."""
    if not path.exists():
        raise OutboxError(f"no outbox at {path}")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            per_kind = {kind: {"messages": n, "items": items or 0, "bytes": size or 0,
                               "oldest_ms": oldest, "first_seq": first}
                        for kind, n, items, size, oldest, first in db.execute(
                            "SELECT kind, COUNT(*), SUM(n_items), SUM(LENGTH(body)), MIN(created_ms), MIN(seq) "
                            "FROM messages GROUP BY kind")}
            meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
            rejects = db.execute("SELECT COUNT(*) FROM rejects").fetchone()[0]
            audit = db.execute("SELECT COUNT(*) FROM audit").fetchone()[0]
        finally:
            db.close()
    except sqlite3.Error as exc:
        raise OutboxError(f"cannot read outbox {path}: {exc}") from exc
    return {"path": str(path), "file_bytes": path.stat().st_size, "kinds": per_kind, "meta": meta,
            "rejects": rejects, "audit": audit}
