"""The registry of what ``guanjia cloud serve`` runs — the seam where cloud packages plug in.

Each entry is a factory, imported here by name: ``factory(ctx)`` is called with the
:class:`cloud.runtime.context.ServiceContext` and returns a list of components (objects with a
``name`` and ``async def run(self, ctx) -> None`` that run until cancelled). Real imports, not
``"module:function"`` strings: a part that is missing or renamed fails at import (and in
``mypy``/``lint-imports``) instead of being skipped silently at start-up.

How to add yours: import its factory below and append it. The factory looks at ``ctx.config``
(``--no-api``, ``--workers``) to decide what to return. API routers are added in
:mod:`cloud.app` instead.
"""

from __future__ import annotations

from cloud.analytics.service import components as analytics
from cloud.db.maintenance import components as maintenance
from cloud.ingest.service import components as ingest
from cloud.ops.fleetrules.stream import components as fleet_stream
from cloud.ops.inspections.service import components as inspections
from cloud.ops.maintenance.service import components as planned_maintenance
from cloud.ops.reports.service import components as report_delivery
from cloud.ops.service import components as ops
from cloud.runtime.context import ComponentFactory
from cloud.server import components as api

COMPONENTS: list[ComponentFactory] = [
    ingest,  # MQTT ingest workers (ctx.config.workers of them)
    maintenance,  # partitions ahead, retention, rollup + last-value refresh
    api,  # the FastAPI app on uvicorn (unless --no-api)
    ops,  # alarms → work orders → escalation → notifications
    fleet_stream,  # fleet rules on the live ingested telemetry (after-commit hook)
    analytics,  # anomaly scoring + health records every 15 min, daily retrain
    inspections,  # missed inspection checkpoints → alarms
    planned_maintenance,  # planned work orders ahead of their due date, overdue and lift-compliance alarms
    report_delivery,  # manager reports by email (PDF) and messenger after each period closes
]

INGEST_ONLY: list[ComponentFactory] = [ingest, api]
"""``api`` here is only :class:`cloud.server.MetricsServer` (``--metrics-port``): an ingest-only
process has ``config.api`` false."""
"""``guanjia cloud ingest``: scale-out processes beside one ``serve``."""
