"""Local rules on the agent: the shared :mod:`rules` engine run on every polled reading.

Why on the edge: an elevator entrapment must raise its alarm even while the cloud is unreachable,
and the alarm must be in the outbox (priority 0, ahead of telemetry) within one poll. The engine is
pure; this adapter owns its I/O: loading rule files, hot reload (the old rules stay when a new file
is invalid, with the ``file:line: field: message`` logged), a periodic ``tick`` for time-based
conditions (``for:`` durations, offline), and the state snapshot written to disk every
``snapshot_interval_s`` and at shutdown, so durations and active alarms survive a restart.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from edge.config import RulesConfig
from guanjia.core.wire import Quality, Scalar
from rules import AlarmEvent, RuleEngine, RuleError, RuleSet, RuleWatcher, load_ruleset

log = logging.getLogger(__name__)

AlarmSink = Callable[[dict[str, Any]], None]


class RuleRunner:
    """Feeds readings to the engine and alarms to ``on_alarm`` (the outbox)."""

    def __init__(self, config: RulesConfig, on_alarm: AlarmSink, clock: Callable[[], int]) -> None:
        self.config = config
        self.on_alarm = on_alarm
        self.clock = clock
        self.engine: RuleEngine | None = None
        self.watcher: RuleWatcher | None = None
        self.alarms_raised = 0
        self.alarms_cleared = 0
        self.errors = 0
        self.rules = 0

    def load(self, devices: Mapping[str, tuple[str, str]] | None = None) -> None:
        """Build the engine (raises ConfigError for invalid rule files at startup) and restore its
        saved state; ``devices`` (id → (kind, profile)) are watched from now on, so offline rules
        fire even for a device that never answers."""
        ruleset = load_ruleset(self.config.paths, builtin=self.config.builtin)
        self.rules = len(ruleset)
        state = self._read_state()
        now = self.clock()
        if state is not None:
            try:
                self.engine = RuleEngine.restore(ruleset, state, now_ms=now)
                log.info("rules: %d rules, state of %d devices restored from %s", self.rules,
                         len(state.get("devices", {})), self.config.state_path)
            except (RuleError, KeyError, TypeError, ValueError) as exc:
                log.warning("rules: cannot restore state from %s (%s); starting fresh", self.config.state_path, exc)
        if self.engine is None:
            self.engine = RuleEngine(ruleset)
            log.info("rules: %d rules loaded", self.rules)
        for device, (kind, profile) in (devices or {}).items():
            self.engine.watch(device, kind, now, profile=profile)
        if self.config.reload and self.config.paths:
            self.watcher = RuleWatcher(self.config.paths, self._reloaded, builtin=self.config.builtin,
                                       interval=2.0, initial=ruleset)

    def _read_state(self) -> dict[str, Any] | None:
        path = self.config.state_path
        if not path.exists():
            return None
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("rules state %s unreadable (%s); starting fresh", path, exc)
            return None
        return data if isinstance(data, dict) else None

    def _reloaded(self, ruleset: RuleSet) -> None:
        if self.engine is not None:
            self.rules = len(ruleset)
            self._emit(self.engine.reload(ruleset, self.clock()))

    def process(self, device: str, kind: str, profile: str, ts: int, values: Mapping[str, Scalar],
                quality: Mapping[str, Quality]) -> None:
        engine = self.engine
        if engine is None:
            return
        overall = Quality.GOOD
        if quality and all(q is Quality.OFFLINE for q in quality.values()):
            overall = Quality.OFFLINE
        try:
            events = engine.process(device, kind, ts, values, quality=overall, q=quality, profile=profile)
        except Exception:
            self.errors += 1
            if self.errors < 10:
                log.exception("rules failed on a reading of %s", device)
            return
        if events:
            self._emit(events)

    def tick(self) -> None:
        if self.engine is None:
            return
        try:
            self._emit(self.engine.tick(self.clock()))
        except Exception:
            self.errors += 1
            log.exception("rules tick failed")

    def _emit(self, events: list[AlarmEvent]) -> None:
        for event in events:
            item = event.to_wire()
            if item.get("state") == "raise":
                self.alarms_raised += 1
            else:
                self.alarms_cleared += 1
            self.on_alarm(dict(item))

    def snapshot(self) -> None:
        """Write the state now (at shutdown; blocking is fine there)."""
        if self.engine is not None:
            self._write(orjson.dumps(self.engine.snapshot()))

    async def snapshot_async(self) -> None:
        """Periodic snapshot: the state is captured on the loop (the engine has one owner), the
        write and fsync run in a thread so a slow disk never stalls polling."""
        if self.engine is not None:
            data = orjson.dumps(self.engine.snapshot())
            await asyncio.to_thread(self._write, data)

    def _write(self, data: bytes) -> None:
        path = self.config.state_path
        tmp = path.with_suffix(path.suffix + ".tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            log.warning("rules state snapshot to %s failed: %s", path, exc)

    async def run(self) -> None:
        """Tick, snapshot and (if enabled) watch the rule files, until cancelled."""
        if self.engine is None:
            return
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._ticker())
            tg.create_task(self._snapshots())
            if self.watcher is not None:
                tg.create_task(self.watcher.run())

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            self.tick()

    async def _snapshots(self) -> None:
        while True:
            await asyncio.sleep(self.config.snapshot_interval_s)
            await self.snapshot_async()

    def stats(self) -> dict[str, int]:
        watcher = self.watcher
        return {"rules": self.rules, "raised": self.alarms_raised, "cleared": self.alarms_cleared,
                "errors": self.errors, "reloads": watcher.reloads if watcher else 0,
                "reload_errors": watcher.rejected if watcher else 0,
                "active": len(self.engine.active_alarms()) if self.engine else 0}
