"""Inspection rounds: slots (pure), and against a real PostgreSQL on a pinned clock — scans, a
finding that opens a work order, a missed checkpoint alarm raised once and cleared, coverage."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import segno

from cloud.ops.inspections import qr, repo
from cloud.ops.inspections.rounds import MISSED_RULE, Scan, check_missed, coverage, record_scan
from cloud.ops.inspections.slots import last_closed, slot_at, slots_of_day
from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import InvalidRequest, NotFound
from cloud.ops.model.policy import Policy
from cloud.ops.workorders import repo as wo_repo

SHANGHAI = ZoneInfo("Asia/Shanghai")


def local(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def test_slots_are_local_and_cross_midnight() -> None:
    assert slot_at(local(2027, 1, 31, 23, 59), 4, SHANGHAI) == (local(2027, 1, 31, 20), local(2027, 2, 1, 0))
    assert slot_at(local(2027, 2, 1, 0, 0), 12, SHANGHAI) == (local(2027, 2, 1, 0), local(2027, 2, 1, 12))
    grace = timedelta(minutes=30)
    # 00:20 on 1 Feb: the 20:00–24:00 slot of 31 Jan is still in its grace → the one before is the last closed
    assert last_closed(local(2027, 2, 1, 0, 20), 4, grace, SHANGHAI) == (local(2027, 1, 31, 16), local(2027, 1, 31, 20))
    assert last_closed(local(2027, 2, 1, 0, 30), 4, grace, SHANGHAI) == (local(2027, 1, 31, 20), local(2027, 2, 1, 0))
    assert len(slots_of_day(date(2027, 2, 1), 4, SHANGHAI)) == 6
    assert slots_of_day(date(2027, 2, 1), 12, SHANGHAI)[1] == (local(2027, 2, 1, 12), local(2027, 2, 2, 0))


def test_qr_code_holds_the_checkpoint_code() -> None:
    svg = qr.svg("XJ-1A2B3C", "1号楼泵房")
    assert svg.startswith("<?xml")
    assert "<svg" in svg
    assert "1号楼泵房 XJ-1A2B3C" in svg
    assert qr.matrix("XJ-1A2B3C") == [list(r) for r in segno.make("XJ-1A2B3C", error="m").matrix]


async def _route(conn: Any, every_hours: int = 4) -> tuple[repo.Route, list[repo.Checkpoint]]:
    route = await repo.create_route(conn, community="cp", name="1号楼设备巡检", every_hours=every_hours,
                                    grace_minutes=30, now=local(2027, 1, 31, 8),
                                    checkpoints=[repo.NewCheckpoint("泵房", building="b7", reading_unit="MPa"),
                                                 repo.NewCheckpoint("电梯机房", building="b7", device="lift-1")])
    return route, await repo.checkpoints(conn, route.id)


async def _alarm(conn: Any, code: str) -> bool | None:
    cur = await conn.execute("SELECT active FROM alarms WHERE device = %s AND rule = %s AND current",
                             (code, MISSED_RULE))
    row = await cur.fetchone()
    return None if row is None else bool(row[0])


async def test_scan_finding_missed_alarm_and_coverage(full: Any, policy: Policy) -> None:
    conn, _, _ = full
    butler = (await (await conn.execute("SELECT id FROM butlers WHERE name = '王师傅'")).fetchone())[0]
    me = Actor.butler(butler)
    _, (pump, lift) = await _route(conn)
    with pytest.raises(InvalidRequest, match="every_hours"):
        await repo.create_route(conn, community="cp", name="x", every_hours=5, grace_minutes=0,
                                checkpoints=[repo.NewCheckpoint("a")], now=local(2027, 1, 31, 8))

    # 20:00–24:00 slot on 31 Jan: the pump is scanned (code typed, lower case), the lift room is not
    with pytest.raises(InvalidRequest, match="reading"):
        await record_scan(conn, policy, "cp", Scan(pump.code), me, local(2027, 1, 31, 21))
    with pytest.raises(NotFound):
        await record_scan(conn, policy, "other", Scan(pump.code, reading=0.4), me, local(2027, 1, 31, 21))
    ok = await record_scan(conn, policy, "cp", Scan(pump.code.lower(), method="code", reading=0.45), me,
                           local(2027, 1, 31, 21))
    assert ok.work_order_id is None

    at = local(2027, 2, 1, 0, 31)  # the slot closed at midnight, +30 min grace
    result = await check_missed(conn, policy, at)
    assert lift.code in result.raised
    assert pump.code not in result.raised
    assert await _alarm(conn, lift.code) is True
    cur = await conn.execute("SELECT message, labels ->> 'message_zh' FROM alarms WHERE device = %s", (lift.code,))
    message, message_zh = await cur.fetchone()
    assert message.startswith("checkpoint missed: ")
    assert message_zh.startswith("巡检点漏检：")
    assert (await check_missed(conn, policy, at + timedelta(minutes=1))).raised == []  # once, not per pass

    # 00:00–04:00 slot: the lift room is visited and a finding opens a work order in one tap
    found = await record_scan(conn, policy, "cp", Scan(lift.code, note="机房漏水 water on the floor",
                                                        photo="/photos/cp/x.jpg", finding=True), me,
                              local(2027, 2, 1, 1, 0))
    assert found.work_order_id is not None
    wo = await wo_repo.get(conn, found.work_order_id)
    assert wo["origin"] == "inspection"
    assert wo["device"] == "lift-1"
    assert wo["photos"] == ["/photos/cp/x.jpg"]
    assert (wo["title"], wo["title_zh"]) == ("inspection finding: 电梯机房", "巡检发现：电梯机房")
    await record_scan(conn, policy, "cp", Scan(pump.code, reading=0.5), me, local(2027, 2, 1, 2, 0))
    cleared = await check_missed(conn, policy, local(2027, 2, 1, 4, 30))
    assert cleared.cleared == [lift.code]
    assert await _alarm(conn, lift.code) is False

    (cov,) = await coverage(conn, "cp", date(2027, 1, 31), local(2027, 2, 1, 4, 30))
    # 31 Jan: the route exists from 08:00, four slots × two checkpoints; only the pump at 21:00 was visited
    assert (cov.expected, cov.covered) == (8, 1)
    assert {m["slot"] for m in cov.missed if m["checkpoint"] == lift.code} >= {"20:00–00:00"}
    (today,) = await coverage(conn, "cp", date(2027, 2, 1), local(2027, 2, 1, 4, 30))
    assert (today.expected, today.covered, today.ratio) == (2, 2, 1.0)  # only the closed 00–04 slot counts
