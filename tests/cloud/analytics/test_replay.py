"""The demo story: a replayed bearing-wear pump gets a planned work order days before the trip.

The replay used to fail whenever it was anchored in the 12:00 UTC hour: the scheduled scoring
passes each see their own warm-up window (``LOOKBACK`` before ``since``), so an episode could be
confirmed before ``since`` in one pass while the previous pass — warmed up six hours earlier —
had not confirmed it yet; the detection fell between the two passes and was lost. Scoring now
also reports an episode that is still open at ``since`` (repeats are de-duplicated by episode).
The pure sweep below replays the same story anchored at every hour of a day; the database path
runs at a few chosen instants.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg
import pytest

from bench.analytics_eval import single_device
from cloud.analytics.detectors import DETECTORS
from cloud.analytics.frames import DAY_MS, HOUR_MS
from cloud.analytics.jobs import LOOKBACK, shipped_limits
from guanjia.app.demo_replay import replay_bearing_wear

SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")

# the hour that used to fail, a month end, a year end in the community's zone, a Sunday evening
INSTANTS = [
    dt.datetime(2026, 12, 5, 12, 30, tzinfo=dt.UTC),
    dt.datetime(2027, 1, 31, 23, 30, tzinfo=dt.UTC),
    dt.datetime(2027, 1, 1, 0, 30, tzinfo=SHANGHAI),
    dt.datetime(2026, 12, 6, 21, 0, tzinfo=SHANGHAI),
]


def _stepwise_detection_day(now: dt.datetime) -> float | None:
    """The replay's scoring schedule (train 14 days, then 6-hour passes with the job's look-back),
    without the database: the simulated day the wear is detected, or None."""
    detector = DETECTORS["pump"]
    end_ms = int(now.timestamp() * 1000) // HOUR_MS * HOUR_MS
    start_ms = end_ms - 28 * DAY_MS
    frame, _ = single_device("pump", "p", days=28, seed=7, start_ms=start_ms, fault="bearing_wear",
                             fault_start_day=16, fault_params={"percent_per_day": 8.0})
    params = detector.hyper(shipped_limits().get("pump", {}))
    params.setdefault("limits", {c.name: c.floor for c in detector.channels})
    baseline = detector.fit_baseline(frame.window(start_ms, start_ms + 14 * DAY_MS), params)
    lookback = int(LOOKBACK.total_seconds() * 1000)
    cursor = start_ms + 14 * DAY_MS
    while cursor < end_ms:
        step_end = min(end_ms, cursor + 6 * HOUR_MS)
        for det in detector.score(frame.window(cursor - lookback, step_end), baseline, params, from_ms=cursor):
            if det.fault == "bearing_wear":
                return (det.detected_ms - start_ms) / DAY_MS
        cursor = step_end
    return None


@pytest.mark.parametrize("hour", [0, 6, 11, 12, 13, 18, 23])
def test_stepwise_scoring_detects_the_wear_whatever_the_anchor_hour(hour: int) -> None:
    # a few hours of the day (12 is the one that failed); each replay costs ~1.5 s of CPU, so the
    # full 24-hour sweep is left to `pytest --at`
    day = _stepwise_detection_day(dt.datetime(2026, 12, 5, hour, 30, tzinfo=dt.UTC))
    assert day is not None
    assert 16 < day < 20  # wear starts on day 16; the overload trips around day 22


@pytest.mark.parametrize("now", INSTANTS[1:], ids=lambda d: d.isoformat())
def test_stepwise_scoring_detects_the_wear_at_calendar_edges(now: dt.datetime) -> None:
    day = _stepwise_detection_day(now)
    assert day is not None
    assert 16 < day < 20


@pytest.mark.parametrize("now", INSTANTS[::2], ids=lambda d: d.isoformat())
async def test_replayed_bearing_wear_opens_a_planned_work_order_days_before_the_overload(
        conn: psycopg.AsyncConnection[Any], now: dt.datetime) -> None:
    result = await replay_bearing_wear(conn, community="demo-replay", days=28, wear_start_day=16,
                                       percent_per_day=8.0, now=now)
    assert result.detected_at is not None
    assert result.message is not None
    assert "more current than usual for this pressure" in result.message
    assert result.work_order is not None
    assert result.work_order["priority"] == "P3"
    assert result.lead_days is not None
    assert result.lead_days > 3
    assert result.detected_at <= now
