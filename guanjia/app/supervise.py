"""``guanjia cloud ingest --processes N``: N ingest processes under one supervisor (issue 21).

Why processes and not more ``--workers`` in one process: an ingest worker is GIL-bound (paho's
packet handling, the preparer, psycopg's Python side); two workers in one interpreter share one
core's worth of Python. Each process here is a whole ``guanjia cloud ingest --processes 1`` with
its own interpreter, broker session and pool, in the same shared-subscription group, so the
broker splits the stream between them as it does between separately started processes.

What the supervisor keeps stable: each slot's MQTT client-id prefix (``PREFIX-pI``, so a
restarted process resumes its persistent session and gets its unacknowledged messages back) and
its ``/metrics`` port (``PORT + I``). A process that exits while the supervisor is not stopping
is started again after a capped backoff — its unacknowledged messages wait in its broker
session meanwhile; nothing is lost. A process that exits with status 2 (a usage or
configuration error) stops everything: starting it again would fail the same way. SIGTERM or
SIGINT to the supervisor is passed on to every process, each drains as it would alone
(:meth:`cloud.ingest.worker.IngestWorker.run`), and the supervisor waits for them.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from types import FrameType

from guanjia.core.backoff import Backoff

log = logging.getLogger(__name__)

MAX_AUTO_PROCESSES = 8
USAGE_ERROR = 2
STOP_WAIT_S = 30.0
"""How long the supervisor waits for its processes after passing a stop on (each has its own 15 s grace)."""


def auto_processes(setting: int) -> int:
    """``GUANJIA_INGEST_PROCESSES`` (0: one per CPU core, at most :data:`MAX_AUTO_PROCESSES`)."""
    if setting > 0:
        return setting
    return max(1, min(MAX_AUTO_PROCESSES, os.cpu_count() or 1))


def supervise(command: Callable[[int], list[str]], count: int, env: Mapping[str, str]) -> int:
    """Run ``command(i)`` for ``i`` in ``range(count)`` until SIGTERM/SIGINT; returns the exit status."""
    stopping = threading.Event()
    procs: list[subprocess.Popen[bytes]] = []
    backoffs = [Backoff(initial=1.0, cap=30.0) for _ in range(count)]
    restart_at = [0.0] * count

    def start(slot: int) -> subprocess.Popen[bytes]:
        return subprocess.Popen(command(slot), env=dict(env))

    def stop(signum: int, frame: FrameType | None) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    status = 0
    try:
        procs.extend(start(slot) for slot in range(count))
        log.info("ingest supervisor: %d processes (pids %s)", count, ", ".join(str(p.pid) for p in procs))
        while not stopping.wait(0.5):
            now = time.monotonic()
            for slot, proc in enumerate(procs):
                code = proc.poll()
                if code is None:
                    continue
                if code == USAGE_ERROR:
                    log.error("ingest process %d exited with a usage error; stopping", slot)
                    status = USAGE_ERROR
                    stopping.set()
                    break
                if not restart_at[slot]:
                    restart_at[slot] = now + backoffs[slot].next_delay()
                    log.warning("ingest process %d exited (%d); restarting in %.1fs", slot, code,
                                restart_at[slot] - now)
                elif now >= restart_at[slot]:
                    restart_at[slot] = 0.0
                    procs[slot] = start(slot)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_WAIT_S
        for proc in procs:
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("ingest process %d did not stop; killing it", proc.pid)
                proc.kill()
                proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status
