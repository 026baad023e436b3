"""Tell other cloud packages about alarms/events right after the ingest transaction commits.

Why in the runtime and not in ``cloud.ingest``: the hooks are a seam of the process, carried by
every :class:`~cloud.runtime.context.ServiceContext`; ingest calls them, ops (fleet stream rules,
the alarm processor) listen. Beside the context they keep the runtime free of imports from the
layers above it; the module itself needs nothing but the standard library.

Two ways, pick what fits:

* **In process** — ``ctx.hooks.on_alarms(callback)`` / ``on_events``: ``await callback(ids)`` is
  called with the new ``alarm_events.id`` / ``device_events.id`` values after each commit, from
  the ingest worker's task. Keep it short (hand the ids to your own bounded queue); an exception
  is logged and counted, never fails the ingest.
* **Across processes** — the ingest transaction sends ``NOTIFY guanjia_alarm_events, '<max id>'``
  (and ``guanjia_device_events``); ``LISTEN`` on it and read rows with ``id > your cursor``. The
  NOTIFY is delivered at commit, so a listener never sees an id whose row is not visible yet.

Telemetry (for fleet rules on the live stream) is handed over in process only:
``ctx.hooks.on_telemetry(callback)`` → ``callback(batches)`` is called synchronously after each
commit with one :class:`TelemetryBatch` per newly committed telemetry message (redeliveries are
not repeated). The callback must not block: :class:`TelemetryFeed` is the intended one — a
bounded queue that drops (and counts) batches when its consumer lags. Dropping there is
acceptable only because the readings are already committed: the consumer misses them for rule
evaluation only, and resumes with the next batch. With no callback registered the writer does no
per-reading work at all (the batch objects only reference what the preparer decoded anyway).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from guanjia.core.wire import ReadingDict

log = logging.getLogger(__name__)

ALARM_CHANNEL = "guanjia_alarm_events"
EVENT_CHANNEL = "guanjia_device_events"

Callback = Callable[[list[int]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class TelemetryBatch:
    """One committed telemetry message, as decoded: wire ``readings`` items and who sent them.

    ``readings`` is the message's item list as decoded (not filtered: items the preparer refused —
    a device this gateway may not report for, a timestamp outside the accepted window — are still
    in it); ``devices`` maps every device code this gateway may report for to its id, so a
    consumer filters with one dict lookup per reading. ``received_ms`` is when ingest got it.
    """

    community: str
    gateway: str
    gateway_id: int
    seq: int
    received_ms: int
    devices: dict[str, int]
    readings: list[ReadingDict]


TelemetryCallback = Callable[[list[TelemetryBatch]], None]


class TelemetryFeed:
    """A bounded hand-over from the ingest writer to one consumer task.

    :meth:`offer` never blocks: when ``maxsize`` batches are waiting, the new ones are dropped and
    counted (``dropped_batches`` / ``dropped_readings``) — safe only because they are committed
    already; the consumer just does not evaluate them.
    """

    def __init__(self, maxsize: int = 256) -> None:
        self.queue: asyncio.Queue[TelemetryBatch] = asyncio.Queue(maxsize=maxsize)
        self.dropped_batches = 0
        self.dropped_readings = 0

    def offer(self, batches: list[TelemetryBatch]) -> None:
        for batch in batches:
            try:
                self.queue.put_nowait(batch)
            except asyncio.QueueFull:
                self.dropped_batches += 1
                self.dropped_readings += len(batch.readings)
                if self.dropped_batches == 1 or self.dropped_batches % 1000 == 0:
                    log.warning("telemetry feed full: %d batches dropped for rule evaluation (data is stored)",
                                self.dropped_batches)

    async def get(self) -> TelemetryBatch:
        return await self.queue.get()

    def qsize(self) -> int:
        return self.queue.qsize()


@dataclass(slots=True)
class IngestHooks:
    alarms: list[Callback] = field(default_factory=list)
    events: list[Callback] = field(default_factory=list)
    telemetry: list[TelemetryCallback] = field(default_factory=list)
    failures: int = 0

    def on_alarms(self, callback: Callback) -> None:
        self.alarms.append(callback)

    def on_events(self, callback: Callback) -> None:
        self.events.append(callback)

    def on_telemetry(self, callback: TelemetryCallback) -> None:
        self.telemetry.append(callback)

    def remove_telemetry(self, callback: TelemetryCallback) -> None:
        if callback in self.telemetry:
            self.telemetry.remove(callback)

    def fire_telemetry(self, batches: list[TelemetryBatch]) -> None:
        """Synchronous on purpose: a telemetry consumer can never hold up the ingest writer."""
        if not batches:
            return
        for callback in list(self.telemetry):
            try:
                callback(batches)
            except Exception:
                self.failures += 1
                log.exception("telemetry hook %r failed for %d batches", callback, len(batches))

    async def fire(self, callbacks: list[Callback], ids: list[int]) -> None:
        if not ids:
            return
        for callback in callbacks:
            try:
                await callback(ids)
            except Exception:
                self.failures += 1
                log.exception("ingest hook %r failed for %d ids", callback, len(ids))
