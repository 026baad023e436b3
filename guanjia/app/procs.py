"""Run the parts of the system as child processes, the way an operator would, and stop them cleanly.

``guanjia demo``, the end-to-end benchmarks and the fault-injection tests all need the same thing:
start the simulators, an edge agent and the cloud service as separate processes (so a SIGKILL is
a real crash), send each one's output to its own log file, notice when one dies, and stop them
in reverse order with SIGTERM, then SIGKILL after a grace period.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)


def guanjia_cmd(*args: str) -> list[str]:
    """The console script of this interpreter's environment (works without PATH set up)."""
    return [sys.executable, "-m", "guanjia.app.cli.main", *args]


def interrupt_on_sigterm() -> None:
    """From now on SIGTERM stops this foreground command the way Ctrl-C does: a KeyboardInterrupt
    in the main thread, so its ``finally`` stops the children and the local stack.

    Why: ``timeout``, systemd, ``docker stop`` and a terminal's parent all send SIGTERM, whose
    default action ends the process at once — ``guanjia demo`` then left its broker, database,
    simulators, edge agent and cloud service running as orphans (each in its own process group,
    which is what lets the supervisor stop them one by one)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


@dataclass(slots=True)
class Child:
    name: str
    argv: list[str]
    log_file: Path
    process: subprocess.Popen[bytes]

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def tail(self, chars: int = 2000) -> str:
        try:
            return self.log_file.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


@dataclass(slots=True)
class Supervisor:
    """Owns child processes; ``stop()`` (or leaving ``running()``) ends them in reverse order."""

    log_dir: Path
    env: Mapping[str, str] = field(default_factory=dict)
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None) -> Child:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log_file = self.log_dir / f"{name}.log"
        merged = {**os.environ, **self.env, **(env or {})}
        with open(log_file, "ab") as fh:
            proc = subprocess.Popen(list(argv), stdout=fh, stderr=subprocess.STDOUT, env=merged,
                                    start_new_session=True)
        child = Child(name, list(argv), log_file, proc)
        self.children.append(child)
        log.info("started %s (pid %d), log %s", name, proc.pid, log_file)
        return child

    def dead(self) -> list[Child]:
        return [c for c in self.children if not c.alive]

    def kill(self, name: str) -> None:
        """SIGKILL one child, as a crash would."""
        for child in self.children:
            if child.name == name and child.alive:
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait(10)

    def stop(self, grace: float = 15.0) -> None:
        for child in reversed(self.children):
            if child.alive:
                try:
                    os.killpg(child.process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        deadline = time.monotonic() + grace
        for child in reversed(self.children):
            remaining = max(0.1, deadline - time.monotonic())
            try:
                child.process.wait(remaining)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop within %.0f s; killing it", child.name, grace)
                with suppress(ProcessLookupError):
                    os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait(5)
        self.children.clear()

    @contextmanager
    def running(self) -> Iterator[Supervisor]:
        try:
            yield self
        finally:
            self.stop()
