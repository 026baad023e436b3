"""The scheduled job of the cloud service: one round trains what is missing, scores, keeps health."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import psycopg

from bench.analytics_eval import single_device
from cloud.analytics.service import AnalyticsJob, components
from cloud.db.pool import open_pool
from cloud.ops.model.policy import default_policy
from cloud.runtime.context import CloudConfig
from cloud.runtime.metrics import Metrics
from guanjia.core.clock import ManualClock
from tests.support.analytics import add_device, load_rollup


async def test_a_round_trains_missing_models_scores_and_refreshes_health(
        analytics_db: str, conn: psycopg.AsyncConnection[Any]) -> None:
    frame, _ = single_device("pump", "b2-pump-1", days=4, seed=9)
    device_id = await add_device(conn, "c-svc", "b2", "b2-pump-1", "pump", "vfd-pump")
    await load_rollup(conn, device_id, frame)
    metrics = Metrics()
    async with open_pool(analytics_db, min_size=1, max_size=2) as pool:
        ctx = cast(Any, SimpleNamespace(pool=pool, metrics=metrics, clock=ManualClock(), policy=default_policy(),
                                        config=CloudConfig(analytics_db, analytics_data_clock=True,
                                                           analytics_train_days=4)))
        [job] = components(ctx)
        assert isinstance(job, AnalyticsJob)
        assert job.data_clock
        await job.round(ctx)
        await job.round(ctx)  # the second round neither retrains (not due) nor fails
    assert job.rounds == 2
    cur = await conn.execute("SELECT detector, version, active FROM analytics_models")
    assert await cur.fetchall() == [("pump", 1, True)]
    cur = await conn.execute("SELECT score FROM device_health WHERE device_id = %s", (device_id,))
    row = await cur.fetchone()
    assert row is not None
    assert 0 <= row[0] <= 100
    assert metrics.counter("guanjia_analytics_models_trained_total", "").total() == 1
