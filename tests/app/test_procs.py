"""``guanjia.app.procs``: a foreground command stopped by SIGTERM stops its children too."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from guanjia.app.stack.pids import pid_running

PARENT = """
import sys, time
from pathlib import Path
from guanjia.app.procs import Supervisor, interrupt_on_sigterm
interrupt_on_sigterm()
out = Path(sys.argv[1])
supervisor = Supervisor(out / "logs")
try:
    child = supervisor.start("sleeper", [sys.executable, "-c", "import time; time.sleep(600)"])
    (out / "child").write_text(str(child.process.pid))
    while True:
        time.sleep(0.05)
except KeyboardInterrupt:
    (out / "interrupted").write_text("yes")
finally:
    supervisor.stop()
"""


def test_sigterm_stops_a_foreground_command_and_its_children_like_ctrl_c(tmp_path: Path) -> None:
    """``timeout``/systemd/``docker stop`` send SIGTERM: ``guanjia demo`` used to die at once and
    leave its database, broker and services running as orphans."""
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)])
    try:
        deadline = time.monotonic() + 30
        while not (tmp_path / "child").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        child = int((tmp_path / "child").read_text())
        assert pid_running(child)
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(timeout=30) == 0
        assert (tmp_path / "interrupted").read_text() == "yes"
        deadline = time.monotonic() + 10
        while pid_running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not pid_running(child)
    finally:
        if parent.poll() is None:
            parent.kill()
