"""The demo story: a replayed bearing-wear pump gets a planned work order days before the trip."""

from __future__ import annotations

from typing import Any

import psycopg

from cloud.analytics.replay import replay_bearing_wear


async def test_replayed_bearing_wear_opens_a_planned_work_order_days_before_the_overload(
        conn: psycopg.AsyncConnection[Any]) -> None:
    result = await replay_bearing_wear(conn, community="demo-replay", days=28, wear_start_day=16,
                                       percent_per_day=8.0)
    assert result.detected_at is not None
    assert result.message is not None
    assert "more current than usual for this pressure" in result.message
    assert result.work_order is not None
    assert result.work_order["priority"] == "P3"
    assert result.lead_days is not None
    assert result.lead_days > 3
