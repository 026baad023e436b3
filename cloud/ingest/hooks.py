"""Tell other cloud packages about alarms/events right after the ingest transaction commits.

Two ways, pick what fits:

* **In process** — ``ctx.hooks.on_alarms(callback)`` / ``on_events``: ``await callback(ids)`` is
  called with the new ``alarm_events.id`` / ``device_events.id`` values after each commit, from
  the ingest worker's task. Keep it short (hand the ids to your own bounded queue); an exception
  is logged and counted, never fails the ingest.
* **Across processes** — the ingest transaction sends ``NOTIFY guanjia_alarm_events, '<max id>'``
  (and ``guanjia_device_events``); ``LISTEN`` on it and read rows with ``id > your cursor``. The
  NOTIFY is delivered at commit, so a listener never sees an id whose row is not visible yet.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

ALARM_CHANNEL = "guanjia_alarm_events"
EVENT_CHANNEL = "guanjia_device_events"

Callback = Callable[[list[int]], Awaitable[None]]


@dataclass(slots=True)
class IngestHooks:
    alarms: list[Callback] = field(default_factory=list)
    events: list[Callback] = field(default_factory=list)
    failures: int = 0

    def on_alarms(self, callback: Callback) -> None:
        self.alarms.append(callback)

    def on_events(self, callback: Callback) -> None:
        self.events.append(callback)

    async def fire(self, callbacks: list[Callback], ids: list[int]) -> None:
        if not ids:
            return
        for callback in callbacks:
            try:
                await callback(ids)
            except Exception:
                self.failures += 1
                log.exception("ingest hook %r failed for %d ids", callback, len(ids))
