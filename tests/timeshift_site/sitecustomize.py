"""Moves the wall clock of Python subprocesses of a ``pytest --at`` session (test-only).

``tests/plugins/timeshift.py`` puts this folder first on ``PYTHONPATH`` and sets
``GUANJIA_TEST_TIME_OFFSET_S`` (the ``--at`` instant minus the real time when the session
started). Every Python process the tests start — ``guanjia cloud ingest`` workers, the edge agent,
simulators, supervised demo parts — imports ``sitecustomize`` at start-up and travels by the same
offset (ticking), so a worker and the test that publishes to it agree on the time. Processes that
are not Python (PostgreSQL, Mosquitto) keep the real time, as in production. Without the variable
this file does nothing.
"""

from __future__ import annotations

import os

_offset = os.environ.get("GUANJIA_TEST_TIME_OFFSET_S")
if _offset:
    import time

    try:
        import time_machine
    except ImportError:  # an interpreter without the dev dependencies: leave its clock alone
        pass
    else:
        time_machine.travel(time.time() + float(_offset), tick=True).start()
