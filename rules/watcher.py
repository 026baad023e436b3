"""Hot reload of rule files: revalidate on change, swap in on success, keep the old set on error.

Polling file signatures (mtime, size) rather than inotify: a rule directory holds a handful of
small files, the check costs microseconds, and it behaves the same on overlay, bind-mounted and
network filesystems of field boxes where inotify events go missing. A reload is all-or-nothing: one
bad file keeps every current rule, and each problem is logged as ``file:line: field: message``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType

from guanjia.core.errors import ConfigError, ConfigIssue
from rules.ruleset import LIBRARY, RuleSet, load_ruleset, rule_files

log = logging.getLogger(__name__)

Signature = tuple[tuple[str, int, int], ...]


class RuleWatcher:
    """Watch rule files; call ``on_reload(new_ruleset)`` after each valid change.

    Use :meth:`poll` from your own loop, or ``async with RuleWatcher(...)`` to poll every
    ``interval`` seconds in a task owned by the watcher. ``on_reload`` is typically
    ``lambda rs: uplink.send(engine.reload(rs, now_ms()))``. ``last_issues`` holds the problems of
    the last rejected change (empty after a good one), for health reports.
    """

    def __init__(
        self,
        paths: Sequence[str | Path],
        on_reload: Callable[[RuleSet], None],
        *,
        builtin: bool = False,
        interval: float = 2.0,
        initial: RuleSet | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.on_reload = on_reload
        self.builtin = builtin
        self.interval = interval
        self.last_issues: list[ConfigIssue] = []
        self.reloads = 0
        self.rejected = 0
        self._signature = self._scan()
        self.current = initial if initial is not None else load_ruleset(self.paths, builtin=builtin)
        self._task: asyncio.Task[None] | None = None
        self._tg: asyncio.TaskGroup | None = None

    def _scan(self) -> Signature:
        files = rule_files(self.paths) + (rule_files([LIBRARY]) if self.builtin else [])
        sig: list[tuple[str, int, int]] = []
        for f in files:
            try:
                st = f.stat()
            except OSError:
                sig.append((str(f), -1, -1))
                continue
            sig.append((str(f), st.st_mtime_ns, st.st_size))
        return tuple(sig)

    def poll(self) -> bool:
        """Check once; return True when a new rule set was swapped in."""
        sig = self._scan()
        if sig == self._signature:
            return False
        self._signature = sig
        try:
            fresh = load_ruleset(self.paths, builtin=self.builtin)
        except ConfigError as exc:
            self.rejected += 1
            self.last_issues = list(exc.issues)
            for issue in exc.issues:
                log.error("rule reload rejected, keeping %d current rules: %s", len(self.current), issue)
            return False
        self.last_issues = []
        self.current = fresh
        self.reloads += 1
        log.info("rules reloaded: %d rules from %d files", len(fresh), len(fresh.files))
        self.on_reload(fresh)
        return True

    async def run(self) -> None:
        """Poll forever (cancel to stop); a failing ``on_reload`` is logged, not fatal."""
        while True:
            await asyncio.sleep(self.interval)
            try:
                self.poll()
            except Exception:
                log.exception("rule reload callback failed")

    async def __aenter__(self) -> RuleWatcher:
        self._tg = asyncio.TaskGroup()
        await self._tg.__aenter__()
        self._task = self._tg.create_task(self.run(), name="rule-watcher")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._tg is not None
        assert self._task is not None
        self._task.cancel()
        await self._tg.__aexit__(exc_type, exc, tb)
        self._tg = None
        self._task = None
