"""pytest plugin: run the whole session at another wall-clock instant (``--at``) and time zone (``--tz``).

``pytest --at 2027-01-01T00:30:00+08:00 tests/cloud/analytics`` moves Python's wall clock
(``time.time``, ``datetime.now``, ``date.today`` …) to that instant with time-machine when the
session starts, with ``tick=True`` so time keeps running from there (timeouts, SSE streams and
token expiry behave as usual). ``--tz Asia/Shanghai`` sets the process time zone (``TZ`` +
``time.tzset``) for code that reads local time. The lead runs the suite at a few instants
(12:30 UTC, a month end, a year end in the community's zone) to show it passes at any date and
hour.

Python subprocesses started by the tests (ingest workers, the edge agent, simulators) are moved
by the same offset: the plugin puts ``tests/timeshift_site`` (a ``sitecustomize``) first on
``PYTHONPATH`` and exports ``GUANJIA_TEST_TIME_OFFSET_S``; ``TZ`` is inherited too.

What it does *not* move: the clocks of other programs. The real PostgreSQL's ``now()`` /
``CURRENT_DATE`` stay at the real time, so business logic must never mix the database's
``now()`` with Python time — every business timestamp comes from the injected
:class:`guanjia.core.clock.Clock` and is passed to SQL as a parameter. A test that fails only under
``--at`` is finding exactly such a mix. ``time.monotonic`` is not moved either (durations only).
"""

from __future__ import annotations

import datetime as dt
import os
import time
from pathlib import Path

import pytest
import time_machine

_TRAVELLER = pytest.StashKey[time_machine.travel]()
_OLD_TZ = pytest.StashKey[str | None]()
_OLD_ENV = pytest.StashKey[dict[str, str | None]]()
SITE = Path(__file__).resolve().parents[1] / "timeshift_site"
OFFSET_ENV = "GUANJIA_TEST_TIME_OFFSET_S"


def parse_instant(text: str) -> dt.datetime:
    """``--at`` value → an aware datetime; a time zone offset is required (no guessing the zone)."""
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError as exc:
        raise pytest.UsageError(f"--at {text!r}: not an ISO 8601 instant "
                                "(e.g. 2027-01-01T00:30:00+08:00) / 不是 ISO 8601 时刻") from exc
    if when.tzinfo is None:
        raise pytest.UsageError(f"--at {text!r}: give an offset such as +08:00 or Z / 请写明时区偏移")
    return when


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("timeshift", "run the session at another wall-clock instant")
    group.addoption("--at", dest="timeshift_at", default=None, metavar="INSTANT",
                    help="start the wall clock at this ISO 8601 instant with an offset, e.g. "
                         "2027-01-01T00:30:00+08:00; time keeps ticking (time-machine, tick=True)")
    group.addoption("--tz", dest="timeshift_tz", default=None, metavar="ZONE",
                    help="process time zone for the session, e.g. Asia/Shanghai or UTC")


def pytest_configure(config: pytest.Config) -> None:
    zone = config.getoption("timeshift_tz", None)
    if zone:
        config.stash[_OLD_TZ] = os.environ.get("TZ")
        os.environ["TZ"] = zone
        time.tzset()
    at = config.getoption("timeshift_at", None)
    if at:
        instant = parse_instant(at)
        # subprocesses travel by the same offset (tests/timeshift_site/sitecustomize.py)
        config.stash[_OLD_ENV] = {k: os.environ.get(k) for k in (OFFSET_ENV, "PYTHONPATH")}
        # nested sessions (a pytest run inside a ``--at`` run) already travel by the outer offset:
        # the new offset is measured from the real time, which is ``time.time()`` less that one
        outer = float(os.environ.get(OFFSET_ENV) or 0.0)
        os.environ[OFFSET_ENV] = repr(instant.timestamp() - time.time() + outer)
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(SITE), os.environ.get("PYTHONPATH")) if p)
        traveller = time_machine.travel(instant, tick=True)
        traveller.start()
        config.stash[_TRAVELLER] = traveller


def pytest_report_header(config: pytest.Config) -> list[str]:
    lines = []
    if at := config.getoption("timeshift_at", None):
        lines.append(f"timeshift: wall clock started at {parse_instant(at).isoformat()} (ticking)")
    if zone := config.getoption("timeshift_tz", None):
        lines.append(f"timeshift: TZ={zone}")
    return lines


def pytest_unconfigure(config: pytest.Config) -> None:
    if (traveller := config.stash.get(_TRAVELLER, None)) is not None:
        traveller.stop()
    for key, value in config.stash.get(_OLD_ENV, {}).items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    if _OLD_TZ in config.stash:
        old = config.stash[_OLD_TZ]
        if old is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = old
        time.tzset()
