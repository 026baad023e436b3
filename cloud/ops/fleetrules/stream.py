"""Fleet rules on the live ingested stream: the cloud half of "same rule language, edge and cloud".

Feed: the ingest writer's after-commit telemetry hook (:mod:`cloud.runtime.hooks`) hands every
newly committed telemetry message to a bounded :class:`~cloud.runtime.hooks.TelemetryFeed`; this
component drains it, keeps only readings of devices the sending gateway may report for and
inside the accepted time window (the preparer's refusals are not repeated in the hook, and one
future-dated reading would otherwise stall a device's rules: the engine skips anything older than
a device's newest reading), and runs them through :class:`rules.stream.StreamEvaluator`. Device
kind, profile and building come from the registry (``devices``), cached per device id.

One engine per community: device codes are unique only within a community, and rules match
device-code globs, so the engine's device key stays the plain code.

Alarms: raise/clear transitions go through :func:`cloud.ops.alarms.lifecycle.apply_event` — the path
of edge alarms and rollup fleet rules — with ``source = 'fleet'``; the engine snapshot is saved
in ``fleet_rule_state`` (row ``stream``) in the same transaction, and every ``save_interval``
otherwise, so pending ``for:`` timers survive a restart. A restart after a crash resumes from the
last snapshot: a transition made after it may be made again, which the lifecycle treats as a
duplicate (same identity, device time not newer).

Scope: the hook is in process, so this evaluates what the ingest workers of *this* process
commit. Run fleet stream rules in one process that runs all ingest workers (``guanjia cloud serve
--workers N``); an ingest-only process (``guanjia cloud ingest``) does not evaluate them.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb
from psycopg_pool import PoolTimeout

from cloud.ops.alarms.lifecycle import Result, apply_event
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import Policy, context_policy
from cloud.runtime.context import Component, ServiceContext
from cloud.runtime.hooks import TelemetryBatch, TelemetryFeed
from guanjia.core.backoff import Backoff
from guanjia.core.clock import Clock, to_ms
from guanjia.core.wire import ReadingDict
from rules import RuleEngine, RuleSet, load_ruleset
from rules.engine import AlarmEvent as RuleAlarm
from rules.errors import RuleError
from rules.stream import StreamEvaluator

log = logging.getLogger(__name__)

LIBRARY: Final = Path(__file__).with_name("library") / "stream"
STATE_NAME: Final = "stream"
SNAPSHOT_FORMAT: Final = "guanjia.fleetstream/1"
STALE_AFTER_MS: Final = 15 * 60_000
"""Time-driven conditions (``for:``) keep running between readings for this long: longer than any
shipped profile's ``max_interval_s`` (report by exception sends unchanged values at least every
10 min), so a quiet but healthy device keeps its timers, while a device that stopped reporting
(gateway down: the offline watchdog's business) does not raise on its last value forever."""
MAX_FUTURE_MS: Final = 5 * 60_000
MAX_AGE_MS: Final = 30 * 86_400_000
DIRECTORY_TTL_S: Final = 300.0
MAX_PENDING: Final = 10_000


def stream_ruleset(extra: Iterable[str | Path] = ()) -> RuleSet:
    """The shipped stream rules plus site files (``GUANJIA_FLEET_STREAM_RULES``)."""
    return load_ruleset([LIBRARY, *extra])


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    code: str
    kind: str
    profile: str | None
    building: str | None


_DEVICES_SQL = """
SELECT d.id, d.code, d.kind, d.profile_id, b.code FROM devices d LEFT JOIN buildings b ON b.id = d.building_id
WHERE d.id = ANY(%s)
"""


class StreamFleetRules:
    """Engines, registry directory and persistence; the component below only schedules it."""

    def __init__(self, policy: Policy, ruleset: RuleSet | None = None,
                 stale_after_ms: int | None = STALE_AFTER_MS) -> None:
        self.policy = policy
        self.ruleset = ruleset if ruleset is not None else stream_ruleset()
        self.stale_after_ms = stale_after_ms
        self.evaluators: dict[str, StreamEvaluator] = {}
        self._directory: dict[int, tuple[DeviceInfo | None, float]] = {}
        self._batch_dir: dict[str, tuple[str, str | None]] = {}
        self.kinds: dict[tuple[str, str], DeviceInfo] = {}
        """(community, device code) → what the alarm lifecycle needs (kind, building)."""
        self.pending: list[tuple[str, RuleAlarm]] = []
        self.stats = {"readings": 0, "refused": 0, "unknown_devices": 0, "lost_transitions": 0}
        self.relevant = self.ruleset.kinds()

    # ------------------------------------------------------------------ state
    def _evaluator(self, community: str, engine: RuleEngine | None = None) -> StreamEvaluator:
        ev = self.evaluators.get(community)
        if ev is None:
            engine = engine or RuleEngine(self.ruleset, stale_after_ms=self.stale_after_ms)
            ev = self.evaluators[community] = StreamEvaluator(engine, self._batch_dir.get)
        return ev

    def snapshot(self) -> dict[str, Any]:
        return {"format": SNAPSHOT_FORMAT,
                "communities": {c: ev.engine.snapshot() for c, ev in self.evaluators.items()}}

    async def load(self, conn: AsyncConnection[Any]) -> None:
        """Restore the engines from the saved snapshot (a missing or unreadable one starts fresh)."""
        cur = await conn.execute("SELECT snapshot FROM fleet_rule_state WHERE name = %s", (STATE_NAME,))
        row = await cur.fetchone()
        if not conn.autocommit:
            await conn.commit()
        self.evaluators.clear()
        data = row[0] if row is not None else {}
        if not data:
            return
        if data.get("format") != SNAPSHOT_FORMAT:
            log.warning("fleet stream state has format %r (want %s); starting fresh", data.get("format"),
                        SNAPSHOT_FORMAT)
            return
        for community, snap in (data.get("communities") or {}).items():
            try:
                engine = RuleEngine.restore(self.ruleset, snap, stale_after_ms=self.stale_after_ms)
            except (RuleError, KeyError, TypeError, ValueError) as exc:
                log.warning("fleet stream state of community %s unusable (%s); starting it fresh", community, exc)
                continue
            self._evaluator(str(community), engine)
        log.info("fleet stream rules restored: %d communities, %d devices", len(self.evaluators),
                 sum(ev.engine.devices for ev in self.evaluators.values()))

    async def save(self, conn: AsyncConnection[Any], now: datetime) -> None:
        await conn.execute(
            "INSERT INTO fleet_rule_state (name, snapshot, updated_at) VALUES (%s, %s, %s) "
            "ON CONFLICT (name) DO UPDATE SET snapshot = excluded.snapshot, updated_at = excluded.updated_at",
            (STATE_NAME, Jsonb(self.snapshot()), now))

    # ------------------------------------------------------------------ registry
    async def resolve(self, conn: AsyncConnection[Any], *, batches: list[TelemetryBatch], now_s: float) -> None:
        """Make sure every device the batches name (and may report for) is in the directory."""
        wanted: set[int] = set()
        for batch in batches:
            devices = batch.devices
            for item in batch.readings:
                device_id = devices.get(item["device"])
                if device_id is not None:
                    hit = self._directory.get(device_id)
                    if hit is None or hit[1] < now_s:
                        wanted.add(device_id)
        if not wanted:
            return
        cur = await conn.execute(_DEVICES_SQL, (list(wanted),))
        rows = await cur.fetchall()
        if not conn.autocommit:
            await conn.commit()
        expires = now_s + DIRECTORY_TTL_S
        for device_id in wanted:
            self._directory[device_id] = (None, expires)
        for device_id, code, kind, profile, building in rows:
            info = DeviceInfo(str(code), str(kind), profile, building) if kind in self.relevant else None
            self._directory[int(device_id)] = (info, expires)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, batch: TelemetryBatch) -> list[tuple[str, RuleAlarm]]:
        """Run one committed message's readings through its community's engine."""
        lo, hi = batch.received_ms - MAX_AGE_MS, batch.received_ms + MAX_FUTURE_MS
        devices = batch.devices
        self._batch_dir.clear()
        items: list[ReadingDict] = []
        for item in batch.readings:
            device = item["device"]
            device_id = devices.get(device)
            if device_id is None or not lo <= item["ts"] <= hi:
                self.stats["refused"] += 1
                continue
            hit = self._directory.get(device_id)
            info = hit[0] if hit is not None else None
            if info is None:
                self.stats["unknown_devices"] += 1  # not a kind any stream rule is about
                continue
            self._batch_dir[device] = (info.kind, info.profile)
            self.kinds[(batch.community, device)] = info
            items.append(item)
        if not items:
            return []
        self.stats["readings"] += len(items)
        return [(batch.community, e) for e in self._evaluator(batch.community).readings(items)]

    def tick(self, now_ms: int) -> list[tuple[str, RuleAlarm]]:
        return [(c, e) for c, ev in self.evaluators.items() for e in ev.tick(now_ms)]

    def queue(self, events: list[tuple[str, RuleAlarm]]) -> None:
        self.pending += events
        if len(self.pending) > MAX_PENDING:  # the database has been away for a long time
            lost = len(self.pending) - MAX_PENDING
            self.stats["lost_transitions"] += lost
            log.error("fleet stream: %d alarm transitions dropped while the database was unreachable", lost)
            del self.pending[:lost]

    def to_cloud(self, community: str, event: RuleAlarm) -> AlarmEvent:
        info = self.kinds.get((community, event.device))
        value = round(event.value, 4) if isinstance(event.value, float) else event.value
        return AlarmEvent(
            community=community, device=event.device, rule=event.rule, state=event.state, ts=event.ts,
            severity=event.severity, message=event.message, value=value, work_order=event.work_order,
            labels=dict(event.labels), source="fleet",
            device_kind=info.kind if info is not None else event.labels.get("kind"),
            building=info.building if info is not None else None,
        )

    async def flush(self, conn: AsyncConnection[Any], now: datetime) -> list[Result]:
        """Apply the pending transitions and save the snapshot, in one transaction."""
        results: list[Result] = []
        async with conn.transaction():
            for community, event in self.pending:
                results.append(await apply_event(conn, self.policy, self.to_cloud(community, event), now))
            await self.save(conn, now)
        self.pending.clear()
        return results


class FleetStreamComponent:
    """``fleet-stream``: evaluates :class:`StreamFleetRules` on what this process ingests."""

    name = "fleet-stream"

    def __init__(self, policy: Policy, clock: Clock, *, extra_rules: Iterable[str | Path] = (),
                 ruleset: RuleSet | None = None, tick_s: float = 1.0, save_interval: float = 30.0,
                 queue_size: int = 256) -> None:
        self.core = StreamFleetRules(policy, ruleset if ruleset is not None else stream_ruleset(extra_rules))
        self.clock = clock
        self.tick_s = tick_s
        self.save_interval = save_interval
        self.feed = TelemetryFeed(queue_size)
        self.started = asyncio.Event()

    async def run(self, ctx: Any) -> None:
        core, feed = self.core, self.feed
        m = ctx.metrics
        m_readings = m.counter("guanjia_fleet_stream_readings_total", "Readings evaluated by fleet stream rules")
        m_transitions = m.counter("guanjia_fleet_stream_transitions_total", "Fleet stream alarm transitions applied")
        m.gauge("guanjia_fleet_stream_queue_depth", "Committed telemetry messages waiting for fleet stream rules",
                source=feed.qsize)
        m.gauge("guanjia_fleet_stream_dropped_batches", "Telemetry messages not evaluated (consumer lagged; data is "
                "stored)", source=lambda: float(feed.dropped_batches))
        m.gauge("guanjia_fleet_stream_dropped_readings", "Readings not evaluated (consumer lagged; data is stored)",
                source=lambda: float(feed.dropped_readings))
        await self._with_db(ctx, core.load)
        ctx.hooks.on_telemetry(feed.offer)
        self.started.set()
        log.info("fleet stream rules: %d rules on kinds %s", len(core.ruleset), ", ".join(sorted(core.relevant)))
        loop = asyncio.get_running_loop()
        next_tick = loop.time() + self.tick_s
        next_save = loop.time() + self.save_interval
        try:
            while True:
                batches: list[TelemetryBatch] = []
                try:
                    async with asyncio.timeout(max(0.0, next_tick - loop.time())):
                        batches.append(await feed.get())
                except TimeoutError:
                    pass
                while batches and len(batches) < 64 and feed.qsize():
                    batches.append(feed.queue.get_nowait())
                if batches:
                    await self._with_db(ctx, functools.partial(core.resolve, batches=batches, now_s=loop.time()))
                    before = core.stats["readings"]
                    for batch in batches:
                        core.queue(core.evaluate(batch))
                    m_readings.inc(core.stats["readings"] - before)
                if loop.time() >= next_tick:
                    core.queue(core.tick(to_ms(self.clock.now())))
                    next_tick = loop.time() + self.tick_s
                if core.pending or loop.time() >= next_save:
                    results = await self._flush(ctx)
                    for r in results:
                        m_transitions.inc(outcome=r.outcome)
                    next_save = loop.time() + self.save_interval
        finally:
            ctx.hooks.remove_telemetry(feed.offer)
            try:  # keep half-elapsed ``for:`` timers across a clean restart
                async with asyncio.timeout(10), ctx.pool.connection() as conn:
                    await core.flush(conn, self.clock.now())
            except (psycopg.Error, PoolTimeout, TimeoutError) as exc:
                log.warning("fleet stream state not saved at shutdown: %s", exc)

    async def _flush(self, ctx: Any) -> list[Result]:
        try:
            async with asyncio.timeout(60), ctx.pool.connection() as conn:
                return await self.core.flush(conn, self.clock.now())
        except (psycopg.Error, PoolTimeout, TimeoutError) as exc:
            log.warning("fleet stream: applying %d transitions failed (%s); retrying", len(self.core.pending), exc)
            return []

    @staticmethod
    async def _with_db(ctx: Any, work: Callable[[AsyncConnection[Any]], Awaitable[None]]) -> None:
        """Run ``work(conn)`` until the database answers (the feed drops, and counts, meanwhile)."""
        backoff = Backoff(initial=0.5, cap=10.0)
        while True:
            try:
                async with asyncio.timeout(30), ctx.pool.connection() as conn:
                    await work(conn)
                return
            except (psycopg.Error, PoolTimeout, TimeoutError) as exc:
                delay = backoff.next_delay()
                log.warning("fleet stream: database unavailable (%s); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)


def components(ctx: ServiceContext) -> list[Component]:
    """Registered in :mod:`cloud.components`; nothing to do in a process without ingest workers.

    The service's one policy (``GUANJIA_WO_POLICY``, loaded once), one clock, and the extra rule
    files of ``ctx.config.fleet_stream_rules`` (``GUANJIA_FLEET_STREAM_RULES``)."""
    if ctx.config.workers <= 0:
        return []
    return [FleetStreamComponent(context_policy(ctx), ctx.clock, extra_rules=ctx.config.fleet_stream_rules)]
