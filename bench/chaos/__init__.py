"""``python -m bench chaos``: the fault-injection suite (broker, database, edge, ingest, network, devices).

Each scenario runs a fresh community (simulators + edge agent) against one shared loopback stack,
breaks one thing, heals it, and ends with an exact per-gateway reconciliation by wire sequence
number (see :mod:`bench.chaos.reconcile`), exactly the work orders the scenario declares and the
edge's alarm state in the cloud (see :mod:`bench.chaos.expect`). ``run`` is the benchmark entry
point; ``python -m bench chaos --scenario NAME`` runs single scenarios.
"""

from __future__ import annotations

from typing import Any


def run(quick: bool = False, only: list[str] | None = None) -> dict[str, Any]:
    from bench.chaos.run import run as _run

    return _run(quick, only)
