"""Is a process id a live process? ``kill(pid, 0)`` alone says yes to a zombie.

A child that exited but was not yet reaped by its parent (a ``guanjia stack up`` that died, a
supervisor that has not called ``wait``) still owns its pid, so ``os.kill(pid, 0)`` succeeds and
``guanjia stack status`` used to call a dead broker "running". On Linux the state letter in
``/proc/PID/stat`` tells: ``Z`` (zombie) and ``X`` (dead) are not running. Where ``/proc`` is
absent (macOS), the signal probe is all there is.
"""

from __future__ import annotations

import os
from pathlib import Path

PROC = Path("/proc")


def process_state(pid: int, proc: Path = PROC) -> str | None:
    """The state letter of ``pid`` from ``/proc/PID/stat`` (R, S, D, Z, X, …); None without /proc."""
    try:
        stat = (proc / str(pid) / "stat").read_text()
    except OSError:
        return None
    # "pid (comm) state ...": comm may hold spaces and parentheses, so split after the last ')'
    rest = stat.rpartition(")")[2].split()
    return rest[0] if rest else None


def pid_running(pid: int, proc: Path = PROC) -> bool:
    """True when ``pid`` exists and is not a zombie / dead entry."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by another user (the postgres system user when we run as root)
    return process_state(pid, proc) not in ("Z", "X")
