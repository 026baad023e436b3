"""``pytest --at`` / ``--tz`` (tests/plugins/timeshift.py) really move the session's wall clock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.plugins.timeshift import parse_instant

ROOT = Path(__file__).resolve().parents[1]

PROBE = '''
import datetime as dt
import subprocess
import sys
import time


def test_the_session_runs_at_the_given_instant_and_keeps_ticking() -> None:
    now = dt.datetime.now(dt.UTC)
    assert dt.datetime(2026, 12, 31, 16, 30, tzinfo=dt.UTC) <= now < dt.datetime(2026, 12, 31, 16, 35, tzinfo=dt.UTC)
    assert time.localtime().tm_hour == 0 and time.localtime().tm_year == 2027  # --tz Asia/Shanghai
    first = time.time()
    time.sleep(0.05)
    assert time.time() > first  # tick=True: timeouts and token expiry still see time pass


def test_python_subprocesses_travel_with_the_session() -> None:
    code = "import datetime as dt, time; print(dt.datetime.now(dt.UTC).isoformat(), time.localtime().tm_hour)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out[0].startswith("2026-12-31T16:3"), out
    assert out[1] == "0", out
'''


def test_at_and_tz_move_the_wall_clock_of_a_whole_session(tmp_path: Path) -> None:
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE)
    ini = tmp_path / "pytest.ini"
    ini.write_text("[pytest]\n")  # not the project's config: no fixtures, no real services
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.plugins.timeshift", "-p", "no:cacheprovider",
         "-c", str(ini), "--rootdir", str(tmp_path), "--at", "2027-01-01T00:30:00+08:00", "--tz", "Asia/Shanghai",
         str(probe)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "2 passed" in run.stdout


def test_an_instant_needs_an_offset() -> None:
    assert parse_instant("2027-01-01T00:30:00Z").utcoffset() is not None
    with pytest.raises(pytest.UsageError, match="offset"):
        parse_instant("2027-01-01T00:30:00")
    with pytest.raises(pytest.UsageError, match="ISO 8601"):
        parse_instant("new year")
