"""Benchmarks run by ``make bench`` / ``guanjia bench NAME``.

Each benchmark is a function ``run(quick: bool) -> dict[str, float | int | bool]`` returning flat
keys in the units their names say. Benchmarks are harnesses: they may drive edge and cloud
together (as separate processes or tasks), which the product packages themselves never do.
"""

from __future__ import annotations

REGISTRY: dict[str, str] = {
    "alarm": "bench.alarm:run",
    "web": "bench.web:run",
    "ingest-smoke": "bench.ingest_smoke:run",
    "ingest": "bench.ingest:run",
    "analytics": "bench.analytics:run",
    "edge": "bench.edge:run",
    "rules": "bench.rules:run",
    "chaos": "bench.chaos:run",
    "soak": "bench.soak:run",
}
