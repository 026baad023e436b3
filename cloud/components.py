"""The registry of what ``guanjia cloud serve`` runs — the seam where cloud packages plug in.

Each entry is ``"module:factory"``; the factory is called as ``factory(ctx)`` with the
:class:`cloud.service.ServiceContext` and returns a list of components (objects with a ``name``
and ``async def run(self, ctx) -> None`` that run until cancelled). Entries are imported lazily so
a missing optional part never breaks the service, and so this module imports nothing heavy.

How to add yours (WORKORDERS, WEB, analytics …): append one line below, e.g.
``"cloud.ops.service:components"``. The factory may look at ``ctx.options`` (``--no-api``,
``--workers``) to decide what to return. API routers are added in :mod:`cloud.api.app` instead.
"""

from __future__ import annotations

COMPONENTS: list[str] = [
    "cloud.ingest.service:components",  # MQTT ingest workers (ctx.options.workers of them)
    "cloud.db.maintenance:components",  # partitions ahead, retention, rollup + last-value refresh
    "cloud.api.server:components",  # the FastAPI app on uvicorn (unless --no-api)
    "cloud.ops.service:components",  # alarms → work orders → escalation → notifications
    "cloud.ops.fleetrules.stream:components",  # fleet rules on the live ingested telemetry (after-commit hook)
    "cloud.analytics.service:components",  # anomaly scoring + health records every 15 min, daily retrain
]
