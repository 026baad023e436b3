"""The demo story: a replayed bearing-wear pump gets a planned work order days before the trip —
whatever hour and date the replay is anchored at.

The replay used to fail whenever it was anchored in the 12:00 UTC hour, and hourly scoring
missed the wear for 5 of 24 anchor hours: each scoring pass warmed its EWMAs up on its own
look-back, so an episode confirmed inside a look-back could fall between two passes. Scoring now
works on a fixed time grid (:mod:`cloud.analytics.timeline`) and records whatever a pass finds
that was never recorded, so every anchor hour gives a detection. The sweep runs the product path
(PostgreSQL, train, 6-hour scoring passes, fleet alarm, work order) anchored at each of the 24
hours of a day, and at calendar edges in the community's zone.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest

from guanjia.app.demo_replay import ReplayResult, replay_bearing_wear

SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")

# a month end, a year end in the community's zone, a Sunday evening
EDGES = [
    dt.datetime(2027, 1, 31, 23, 30, tzinfo=dt.UTC),
    dt.datetime(2027, 1, 1, 0, 30, tzinfo=SHANGHAI),
    dt.datetime(2026, 12, 6, 21, 0, tzinfo=SHANGHAI),
]


async def _replay(conn: psycopg.AsyncConnection[Any], now: dt.datetime) -> ReplayResult:
    tag = now.astimezone(dt.UTC).strftime("%Y%m%d%H")
    return await replay_bearing_wear(conn, community=f"demo-replay-{tag}", days=28, wear_start_day=16,
                                     percent_per_day=8.0, now=now)


def _assert_planned_order_before_the_trip(result: ReplayResult, now: dt.datetime) -> None:
    assert result.detected_at is not None, now
    assert result.message is not None
    assert "more current than usual for this pressure" in result.message
    assert result.work_order is not None
    assert result.work_order["priority"] == "P3"
    assert "电流" in result.work_order["title_zh"]  # the order is named in Chinese too (the banner prints both)
    assert result.lead_days is not None
    assert result.lead_days > 3, (now, result.lead_days)
    assert result.detected_at <= now
    wear_days = (result.detected_at - result.wear_start).total_seconds() / 86_400
    assert 0 < wear_days < 4, (now, wear_days)


@pytest.mark.parametrize("hour", range(24))
async def test_replayed_wear_opens_a_planned_work_order_for_every_anchor_hour(
        conn: psycopg.AsyncConnection[Any], hour: int) -> None:
    now = dt.datetime(2026, 12, 5, hour, 30, tzinfo=dt.UTC)
    _assert_planned_order_before_the_trip(await _replay(conn, now), now)


@pytest.mark.parametrize("now", EDGES, ids=lambda d: d.isoformat())
async def test_replayed_wear_opens_a_planned_work_order_at_calendar_edges(
        conn: psycopg.AsyncConnection[Any], now: dt.datetime) -> None:
    _assert_planned_order_before_the_trip(await _replay(conn, now), now)
