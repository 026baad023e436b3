"""Configuration pushed by the cloud, applied atomically, watched, and rolled back (issue 19).

On disk, under ``managed.dir`` (``managed/`` beside the agent file)::

    versions/<version>/devices.yaml, profiles/…, rules/…   one folder per pushed version
    state.json                                              {"good": …, "trying": …, "report": …}

A push (:meth:`ConfigManager.on_push`) goes: unpack into ``versions/.stage-<version>``, validate
there with the same :func:`edge.bundle.load_bundle` as ``guanjia edge check``, rename the folder
into place (atomic on one file system), note ``trying`` in ``state.json`` (fsync'd), then swap the
agent's acquisition in-process (:meth:`edge.agent.Agent.reconfigure`: pollers, buses, listeners
and rules are rebuilt; the outbox and the uplink session stay, so nothing queued is lost).

Then **probation** (``managed.probation_s``, or the push's own window): every device that was
online before the swap must not go offline nor answer with nothing but errors, and the rules must
load and evaluate without errors. The first failure restores the last good version the same
way and reports ``rolled_back`` with the reason; a window that passes makes the version ``good``.
A restart during probation starts from the last good version (the new one never proved itself)
and reports ``rolled_back`` (``restarted_in_probation``). The cloud is not needed for any of it:
the last good version is on disk and runs after a restart whether or not the broker answers.

Every state change is reported at once in the retained ``status`` (``health.config``, see
:mod:`guanjia.core.wire_config`) — the agent's uplink publishes it without waiting for the
heartbeat.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import orjson

from edge.bundle import load_bundle, load_bundle_cached, write_bundle
from edge.config import AgentConfig
from guanjia.core.errors import ConfigError, GuanjiaError, WireError
from guanjia.core.wire_config import ConfigPush, ConfigReport, ConfigState, parse_config_push

log = logging.getLogger(__name__)

KEEP_VERSIONS = 3
"""Version folders kept on the box besides the running one (older ones are deleted after a push)."""
CHECK_EVERY_S = 0.5


class Reconfigurable(Protocol):
    """What the manager needs of the agent (:class:`edge.agent.Agent`)."""

    async def reconfigure(self, config: AgentConfig) -> None: ...

    def device_states(self) -> dict[str, str]:
        """device id → ``online`` | ``offline`` | ``failing`` (answers, but only with errors) | ``unknown``."""
        ...

    def rule_errors(self) -> int: ...


class ManagedStore:
    """The versions folder and ``state.json`` (written with fsync + rename, like the rule state)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.versions = root / "versions"
        self.state_path = root / "state.json"

    def read_state(self) -> dict[str, Any]:
        try:
            data = orjson.loads(self.state_path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, orjson.JSONDecodeError) as exc:
            log.error("managed config state %s unreadable (%s); running the agent file's own devices",
                      self.state_path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def write_state(self, state: dict[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.state_path.with_suffix(".tmp")
        with open(tmp, "wb") as fh:
            fh.write(orjson.dumps(state))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.state_path)

    def folder(self, version: str) -> Path:
        return self.versions / version

    def unpack(self, push: ConfigPush) -> Path:
        """Unpack into a staging folder and move it into place; the folder of ``push.version``."""
        final = self.folder(push.version)
        stage = self.versions / f".stage-{push.version}"
        shutil.rmtree(stage, ignore_errors=True)
        stage.mkdir(parents=True)
        write_bundle(push.files, stage)
        shutil.rmtree(final, ignore_errors=True)
        os.replace(stage, final)
        return final

    def prune(self, keep: set[str]) -> None:
        if not self.versions.is_dir():
            return
        folders = sorted((p for p in self.versions.iterdir() if p.is_dir() and p.name not in keep),
                         key=lambda p: p.stat().st_mtime, reverse=True)
        for old in folders[KEEP_VERSIONS:]:
            shutil.rmtree(old, ignore_errors=True)


def effective_config(base: AgentConfig, *, strict: bool = False) -> tuple[AgentConfig, dict[str, Any]]:
    """The configuration an agent starts with: ``base`` with the last good version applied (or
    ``base`` itself when nothing was pushed), and the saved state. Used by ``edge run`` and
    ``edge check`` alike. A good version that no longer loads (a damaged disk) is logged and the
    agent file's own devices run: a box that polls something beats one that does not start
    (``strict``: ``guanjia edge check`` raises the :class:`ConfigError` instead)."""
    store = ManagedStore(base.managed.dir)
    state = store.read_state()
    good = state.get("good")
    if not isinstance(good, str):
        return base, state
    try:
        return load_bundle(base, store.folder(good)), state
    except ConfigError as exc:
        if strict:
            raise
        log.error("last good config version %s does not load (%s); running the agent file's devices", good, exc)
        return base, {**state, "good": None}


class ConfigManager:
    """Applies pushes to one agent; ``report()`` goes into the agent's health (``status``)."""

    def __init__(self, base: AgentConfig, state: dict[str, Any], agent: Reconfigurable, *,
                 now_ms: Callable[[], int], status_changed: Callable[[], None]) -> None:
        self.base = base
        self.store = ManagedStore(base.managed.dir)
        self.agent = agent
        self.now_ms = now_ms
        self.status_changed = status_changed
        self._lock = asyncio.Lock()
        self._probation: asyncio.Task[None] | None = None
        good = state.get("good") if isinstance(state.get("good"), str) else None
        self.good: str | None = good
        saved_report = state.get("report")
        saved: dict[str, Any] = saved_report if isinstance(saved_report, dict) else {}
        kept: ConfigState = ("rolled_back" if saved.get("state") == "rolled_back" else "refused"
                             if saved.get("state") == "refused" else "good" if good else "local")
        self._report = ConfigReport(state=kept, running=good, good=good, attempted=saved.get("attempted"),
                                    push=saved.get("push"), reason=saved.get("reason"),
                                    detail=str(saved.get("detail") or ""), ts=int(saved.get("ts") or 0))
        trying = state.get("trying")
        if isinstance(trying, dict) and isinstance(trying.get("version"), str):
            # the process ended while a version was on probation: it never proved itself
            self._finish(ConfigReport("rolled_back", good, good, trying["version"], trying.get("push"),
                                 "restarted_in_probation",
                                 f"the agent restarted while {trying['version']} was on probation; "
                                 f"running {good or 'the agent file'}", self.now_ms()))

    def report(self) -> dict[str, Any]:
        return self._report.wire()

    @property
    def running(self) -> str | None:
        return self._report.running

    def _finish(self, report: ConfigReport, trying: dict[str, Any] | None = None) -> None:
        self._report = report
        self.store.write_state({"good": self.good, "trying": trying, "report": dict(report.wire())})
        self.status_changed()

    async def on_push(self, doc: dict[str, Any]) -> None:
        """Handle a ``config`` message from ``cmd`` (never raises; the outcome is the report)."""
        try:
            push = parse_config_push(doc)
        except WireError as exc:
            log.warning("config push refused: %s", exc)
            self._refuse(str(doc.get("id") or "")[:64] or None, _opt(doc.get("version")), exc.reason, exc.detail)
            return
        if self._lock.locked() or (self._probation is not None and not self._probation.done()):
            if push.version != self._report.attempted:
                self._refuse(push.id, push.version, "busy",
                             f"version {self._report.attempted} is still on probation; push again later")
            return
        async with self._lock:
            await self._apply(push)

    def _refuse(self, push_id: str | None, version: str | None, reason: str, detail: str) -> None:
        self._finish(ConfigReport("refused", self._report.running, self.good, version, push_id, reason, detail,
                             self.now_ms()))

    async def _apply(self, push: ConfigPush) -> None:
        if push.version == self._report.running and self._report.state in ("good", "probation"):
            # a resend (the cloud did not see the report): say again what runs
            self._finish(dataclasses.replace(self._report, push=push.id, ts=self.now_ms()))
            return
        try:
            folder = await asyncio.to_thread(self.store.unpack, push)
            config = await asyncio.to_thread(load_bundle_cached, self.base, folder)
        except ConfigError as exc:
            prefix = f"{self.store.folder(push.version)}/"
            detail = "; ".join(str(i).removeprefix(prefix) for i in exc.issues[:5])
            log.warning("config %s refused: %s", push.version, detail)
            self._refuse(push.id, push.version, "invalid_bundle", detail)
            return
        except OSError as exc:
            self._refuse(push.id, push.version, "apply_failed", f"cannot unpack: {exc}")
            return
        before = {d for d, s in self.agent.device_states().items() if s == "online"}
        previous = self._report.running
        self.store.write_state({"good": self.good, "trying": {"version": push.version, "push": push.id},
                                "report": dict(self._report.wire())})
        try:
            await self.agent.reconfigure(config)
        except Exception as exc:  # any failure of the swap is a refusal; the agent put the old version back
            log.warning("config %s could not be applied: %s", push.version, exc, exc_info=not isinstance(
                exc, GuanjiaError | ValueError))
            self._finish(ConfigReport("refused", previous, self.good, push.version, push.id, "apply_failed",
                                 str(exc)[:500], self.now_ms()))
            return
        log.info("config %s applied; on probation for %.0f s", push.version,
                 push.probation_s or self.base.managed.probation_s)
        self._finish(ConfigReport("probation", push.version, self.good, push.version, push.id, None, "", self.now_ms()),
                     trying={"version": push.version, "push": push.id})
        errors0 = self.agent.rule_errors()  # now, not when the watcher first runs: an early error counts
        self._probation = asyncio.get_running_loop().create_task(
            self._watch(push, before, errors0, push.probation_s or self.base.managed.probation_s),
            name=f"config-probation-{push.version}")

    async def _watch(self, push: ConfigPush, before: set[str], errors0: int, window_s: float) -> None:
        deadline = time.monotonic() + window_s
        while True:
            await asyncio.sleep(CHECK_EVERY_S)
            problem = self._problem(before, errors0)
            if problem is not None:
                async with self._lock:
                    await self._roll_back(push, *problem)
                return
            if time.monotonic() >= deadline:
                break
        self.good = push.version
        log.info("config %s passed probation; it is the good version now", push.version)
        self._finish(ConfigReport("good", push.version, push.version, push.version, push.id, None, "", self.now_ms()))
        await asyncio.to_thread(self.store.prune, {push.version})

    def _problem(self, before: set[str], errors0: int) -> tuple[str, str] | None:
        states = self.agent.device_states()
        lost = sorted(d for d in before if states.get(d) in ("offline", "failing"))
        if lost:
            return "devices_offline", f"online before the push, {states[lost[0]]} after it: {', '.join(lost[:10])}"
        errors = self.agent.rule_errors() - errors0
        if errors > 0:
            return "rules_failed", f"{errors} rule evaluation errors since the push"
        return None

    async def _roll_back(self, push: ConfigPush, reason: str, detail: str) -> None:
        log.warning("config %s rolled back (%s: %s); restoring %s", push.version, reason, detail,
                    self.good or "the agent file's devices")
        config = self.base
        if self.good is not None:
            with contextlib.suppress(ConfigError):
                config = await asyncio.to_thread(load_bundle_cached, self.base, self.store.folder(self.good))
        await self.agent.reconfigure(config)
        self._finish(ConfigReport("rolled_back", self.good, self.good, push.version, push.id, reason, detail[:500],
                             self.now_ms()))

    async def close(self) -> None:
        task = self._probation
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


def _opt(value: object) -> str | None:
    return value[:64] if isinstance(value, str) and value else None


