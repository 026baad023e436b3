"""``guanjia.app.supervise``: the ingest supervisor restarts a crashed slot and passes a stop on."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

from guanjia.app.supervise import USAGE_ERROR, auto_processes, supervise

CHILD = """
import os, signal, sys, time
from pathlib import Path
out = Path(sys.argv[1])
out.with_name(out.name + f".{os.getpid()}").write_text("started")
signal.signal(signal.SIGTERM, lambda *_: (out.with_name(out.name + f".{os.getpid()}").write_text("stopped"),
                                         sys.exit(0)))
if sys.argv[2] == "crash" and not out.with_name("crashed").exists():
    out.with_name("crashed").write_text("x")
    sys.exit(1)
while True:
    time.sleep(0.05)
"""


def test_auto_processes_is_one_per_core_and_a_setting_wins() -> None:
    assert auto_processes(3) == 3
    assert 1 <= auto_processes(0) <= 8
    assert auto_processes(0) == max(1, min(8, os.cpu_count() or 1))


def test_a_crashed_slot_is_restarted_and_a_stop_reaches_every_process(tmp_path: Path) -> None:
    def command(slot: int) -> list[str]:
        return [sys.executable, "-c", CHILD, str(tmp_path / f"slot{slot}"), "crash" if slot == 1 else "run"]

    def stop_later() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and len(list(tmp_path.glob("slot1.*"))) < 2:
            time.sleep(0.1)  # slot 1 crashed once and was started again
        time.sleep(0.3)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_later, daemon=True).start()
    assert supervise(command, 2, os.environ) == 0
    states = {p.name: p.read_text() for p in tmp_path.glob("slot*.*")}
    assert len([n for n in states if n.startswith("slot1.")]) == 2  # the crash and its restart
    assert sorted(v for n, v in states.items() if n.startswith("slot0.")) == ["stopped"]
    assert sum(v == "stopped" for v in states.values()) == 2  # every live process got the stop


def test_a_usage_error_stops_everything(tmp_path: Path) -> None:
    def command(slot: int) -> list[str]:
        code = f"import sys, time; time.sleep({0.2 if slot else 30}); sys.exit({USAGE_ERROR})"
        return [sys.executable, "-c", code]

    started = time.monotonic()
    assert supervise(command, 2, os.environ) == USAGE_ERROR
    assert time.monotonic() - started < 20
