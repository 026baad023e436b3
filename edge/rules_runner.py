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
import contextlib
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from edge.config import RulesConfig
from guanjia.errors import ConfigError
from guanjia.wire import Quality, Scalar

log = logging.getLogger(__name__)

AlarmSink = Callable[[dict[str, Any]], None]


class RuleRunner:
    """Feeds readings to the engine and alarms to ``on_alarm`` (the outbox)."""

    def __init__(self, config: RulesConfig, on_alarm: AlarmSink, clock: Callable[[], int]) -> None:
        self.config = config
        self.on_alarm = on_alarm
        self.clock = clock
        self.engine: Any = None
        self.watcher: Any = None
        self.alarms_raised = 0
        self.alarms_cleared = 0
        self.errors = 0
        self.rules = 0
        self.reload_errors = 0

    def load(self) -> None:
        """Build the engine (raises ConfigError for invalid rule files at startup)."""
        try:
            from rules import RuleEngine, load_ruleset
        except ImportError as exc:  # the rules package is optional at runtime
            log.warning("rules engine unavailable (%s): local rules are off", exc)
            return
        ruleset = load_ruleset(self.config.paths, builtin=self.config.builtin)
        self.rules = len(ruleset)
        state = self._read_state()
        if state is not None:
            try:
                self.engine = RuleEngine.restore(ruleset, state, now_ms=self.clock())
                log.info("rules: %d rules, state restored from %s", self.rules, self.config.state_path)
            except Exception:
                log.exception("rules: cannot restore state from %s; starting fresh", self.config.state_path)
        if self.engine is None:
            self.engine = RuleEngine(ruleset)
            log.info("rules: %d rules loaded", self.rules)

    def _read_state(self) -> Any:
        path = self.config.state_path
        if not path.exists():
            return None
        try:
            return orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("rules state %s unreadable (%s); starting fresh", path, exc)
            return None

    def process(self, device: str, kind: str, profile: str, ts: int, values: Mapping[str, Scalar],
                quality: Quality) -> None:
        if self.engine is None:
            return
        try:
            events = self.engine.process(device, kind, ts, values, quality=quality, profile=profile)
        except Exception:
            self.errors += 1
            if self.errors < 10:
                log.exception("rules failed on a reading of %s", device)
            return
        self._emit(events)

    def tick(self) -> None:
        if self.engine is None:
            return
        try:
            self._emit(self.engine.tick(self.clock()))
        except Exception:
            self.errors += 1
            log.exception("rules tick failed")

    def _emit(self, events: list[Any]) -> None:
        for event in events:
            item = event.to_wire()
            if item.get("state") == "raise":
                self.alarms_raised += 1
            else:
                self.alarms_cleared += 1
            self.on_alarm(dict(item))

    def snapshot(self) -> None:
        if self.engine is None:
            return
        path = self.config.state_path
        tmp = path.with_suffix(path.suffix + ".tmp")
        try:
            data = orjson.dumps(self.engine.snapshot())
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(tmp, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except (OSError, TypeError) as exc:
            log.warning("rules state snapshot to %s failed: %s", path, exc)

    async def run(self) -> None:
        """Tick, snapshot and (if enabled) watch the rule files, until cancelled."""
        if self.engine is None:
            return
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._ticker())
            tg.create_task(self._snapshots())
            if self.config.reload and self.config.paths:
                tg.create_task(self._watch())

    async def _ticker(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            self.tick()

    async def _snapshots(self) -> None:
        while True:
            await asyncio.sleep(self.config.snapshot_interval_s)
            self.snapshot()

    async def _watch(self) -> None:
        """Reload on change; keep the old rules (and their state) when the new files are invalid."""
        from watchfiles import awatch

        from rules import load_ruleset

        watched = [p for p in self.config.paths if p.exists()]
        if not watched:
            return
        async for _changes in awatch(*watched, debounce=500, step=100):
            try:
                ruleset = load_ruleset(self.config.paths, builtin=self.config.builtin)
            except ConfigError as exc:
                self.reload_errors += 1
                for issue in exc.issues:
                    log.error("rule reload refused, old rules kept: %s", issue)
                continue
            with contextlib.suppress(Exception):
                self.engine.swap(ruleset)
                self.rules = len(ruleset)
                log.info("rules reloaded: %d rules", self.rules)

    def stats(self) -> dict[str, int]:
        return {"rules": self.rules, "raised": self.alarms_raised, "cleared": self.alarms_cleared,
                "errors": self.errors, "reload_errors": self.reload_errors}
