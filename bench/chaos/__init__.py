"""``guanjia bench chaos``: the fault-injection suite (broker, database, edge, ingest, network, devices).

Each scenario runs a fresh community (simulators + edge agent) against one shared loopback stack,
breaks one thing, heals it, and ends with an exact per-gateway reconciliation by wire sequence
number (see :mod:`bench.chaos.reconcile`). ``run`` is the benchmark entry point.
"""

from __future__ import annotations

from typing import Any


def run(quick: bool = False) -> dict[str, Any]:
    from bench.chaos.run import run as _run

    return _run(quick)
