"""The community's calendar from PostgreSQL reaches the jobs: the Spring Festival's empty building
opens no work order on the service's path (train → score with pinned times), unless the community
took those days back; the health record says how many hours were not judged."""

from __future__ import annotations

import datetime as dt
from typing import Any

import psycopg

from bench.analytics_eval import single_device
from cloud.analytics.calendar_store import load_calendar
from cloud.analytics.daycalendar import DayType
from cloud.analytics.frames import DAY_MS, HOUR_MS
from cloud.analytics.jobs import score, train
from simulators.labelled_fleet import OperatingChange
from tests.support.analytics import add_device, load_rollup

FESTIVAL_MS = 1_771_084_800_000  # 2026-02-15 00:00 Beijing
START_MS = FESTIVAL_MS - 19 * DAY_MS
EMPTY = [OperatingChange(FESTIVAL_MS, demand_factor=0.1)]


def _at(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, dt.UTC)


async def test_the_stored_calendar_has_the_zone_and_the_communitys_own_days(
        conn: psycopg.AsyncConnection[Any]) -> None:
    await add_device(conn, "c-cal", "b1", "b1-gate-1", "gate", "access-gate")
    await conn.execute("UPDATE communities SET timezone = 'Asia/Urumqi' WHERE code = 'c-cal'")
    await conn.execute("INSERT INTO community_calendar_days (community, day, kind, updated_at, updated_by) "
                       "VALUES ('c-cal', '2026-03-10', 'holiday', now(), 't')")
    calendar = await load_calendar(conn, "c-cal")
    assert calendar.zone == "Asia/Urumqi"
    assert calendar.day_type(dt.date(2026, 3, 10)) is DayType.holiday
    assert calendar.day_type(dt.date(2026, 2, 17)) is DayType.holiday
    assert (await load_calendar(conn, "nowhere")).zone == "Asia/Shanghai"
    # a zone the machine does not know: the default, not a failed scoring run
    await conn.execute("UPDATE communities SET timezone = 'Mars/Olympus' WHERE code = 'c-cal'")
    assert (await load_calendar(conn, "c-cal")).zone == "Asia/Shanghai"


async def _gate_through_the_festival(conn: psycopg.AsyncConnection[Any], community: str) -> list[str]:
    device = await add_device(conn, community, "b1", "b1-gate-1", "gate", "access-gate")
    frame, _ = single_device("gate", "b1-gate-1", days=24, seed=5, start_ms=START_MS, changes=EMPTY)
    await load_rollup(conn, device, frame)
    await train(conn, _at(START_MS), _at(START_MS + 14 * DAY_MS), kinds=["gate"], community=community)
    result = await score(conn, _at(START_MS + 24 * DAY_MS), since=_at(START_MS + 14 * DAY_MS), community=community)
    return [d.detector for d in result.detections]


async def test_the_empty_building_opens_no_work_order_unless_the_community_works_through(
        conn: psycopg.AsyncConnection[Any]) -> None:
    assert "gate.passages_missing" not in await _gate_through_the_festival(conn, "c-away")
    cur = await conn.execute("SELECT record FROM device_health h JOIN devices d ON d.id = h.device_id "
                             "JOIN communities c ON c.id = d.community_id WHERE c.code = 'c-away'")
    row = await cur.fetchone()
    assert row is not None
    assert row[0]["hours_not_judged_holiday"] >= 5 * 24
    cur = await conn.execute("SELECT count(*) FROM work_orders WHERE community = 'c-away'")
    assert (await cur.fetchone() or (1,))[0] == 0

    # the same building, in a community that declared every festival day a working day: judged
    await conn.execute("INSERT INTO communities (code) VALUES ('c-stay')")
    for offset in range(-1, 9):  # the make-up Saturday before and the nine days off
        day = _at(FESTIVAL_MS + offset * DAY_MS + 8 * HOUR_MS).date()
        await conn.execute("INSERT INTO community_calendar_days (community, day, kind, updated_at, updated_by) "
                           "VALUES ('c-stay', %s, 'workday', now(), 't')", (day,))
    await conn.commit()
    assert "gate.passages_missing" in await _gate_through_the_festival(conn, "c-stay")
