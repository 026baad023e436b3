"""``python -m bench soak``: the demo-sized fleet at speed for a bounded time; memory and queues.

Why: leaks and unbounded queues show only over time. The demo community (40 devices) runs with
the simulators at ``--speed 60`` (a simulated hour a minute: faults, peaks, alarms) through one
edge agent and the cloud service (ingest, alarms, maintenance, analytics — no API) on a private
stack. Every ``SAMPLE_S`` seconds the resident set size of every process (simulators, edge, cloud;
whole process groups) and the edge outbox depth are sampled. After a warm-up (the first fifth, at
least 30 s) the growth of each process is ``(mean RSS of the last fifth − RSS at warm-up end) /
RSS at warm-up end``; ``max_rss_growth_pct`` is the worst process. Ends with the exact
reconciliation of :mod:`bench.chaos.reconcile`.

Duration: ``SOAK_MINUTES`` (``make soak`` defaults it to 30); without it 3 minutes (so
``make bench`` stays bounded), and 1 minute with ``--quick``.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

SAMPLE_S = 5.0


def _group_rss_mb(pgid: int) -> float:
    """Sum of VmRSS of every process in a process group (children started with a new session)."""
    total_kb = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.getpgid(int(entry.name)) != pgid:
                continue
            for line in (entry / "status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
                    break
        except (OSError, ValueError):
            continue
    return total_kb / 1024


def _growth(series: list[float], warm: int) -> float:
    if len(series) <= warm + 1 or series[warm] <= 0:
        return 0.0
    tail = series[-max(1, len(series) // 5):]
    return (sum(tail) / len(tail) - series[warm]) / series[warm] * 100


def run(quick: bool = False) -> dict[str, Any]:
    from bench.chaos.counter import Counter
    from bench.chaos.harness import Site, Stack
    from bench.chaos.reconcile import reconcile
    from guanjia.app.stack.local import ADMIN_USER

    env_minutes = os.environ.get("SOAK_MINUTES")
    minutes = float(env_minutes) if env_minutes else (1.0 if quick else 3.0)
    seconds = minutes * 60
    root = Path(tempfile.mkdtemp(prefix="guanjia-soak-"))
    stack = Stack(root).up()
    admin = stack.local.account(ADMIN_USER)
    assert admin is not None
    counter = Counter(stack.broker.url_for(admin), client_id=f"soak-counter-{os.getpid()}")
    rss: dict[str, list[float]] = {}
    depth_max = 0
    try:
        stack.start_cloud("cloud")
        site = Site(stack, "soak", devices=40, sim_args=("--speed", "60"))
        site.start()
        started = time.monotonic()
        while (elapsed := time.monotonic() - started) < seconds:
            for name in ("cloud", site.sim_name, site.edge_name):
                child = stack.child(name)
                if child is None:
                    raise RuntimeError(f"{name} died during the soak: "
                                       f"{next(c for c in stack.supervisor.children if c.name == name).tail()}")
                rss.setdefault(name.split("-")[0], []).append(_group_rss_mb(child.process.pid))
            depth_max = max(depth_max, site.outbox_depth())
            time.sleep(min(SAMPLE_S, max(0.1, seconds - elapsed)))
        site.finish()
        deadline = time.monotonic() + 60
        while True:
            rec = reconcile(stack.database_url, site.community, site.gateway, site.outbox,
                            counter.for_gateway(site.community, site.gateway))
            if rec.lost_messages == 0 or time.monotonic() > deadline:
                break
            time.sleep(1.0)
    finally:
        counter.close()
        stack.down()
        if not os.environ.get("GUANJIA_BENCH_KEEP"):
            shutil.rmtree(root, ignore_errors=True)
    warm = max(len(next(iter(rss.values()), [])) // 5, int(30 / SAMPLE_S))
    growth = {name: round(_growth(series, warm), 2) for name, series in rss.items()}
    result: dict[str, Any] = {
        "minutes": round(minutes, 2),
        "max_rss_growth_pct": max(growth.values(), default=0.0),
        "lost": rec.lost,
        "duplicated": rec.duplicated,
        "messages": rec.expected_messages,
        "points_stored": rec.stored_points,
        "outbox_depth_max": depth_max,
    }
    for name, series in rss.items():
        result[f"rss_mb_{name}_end"] = round(series[-1], 1)
        result[f"rss_growth_pct_{name}"] = growth[name]
    return result
