"""Complaints with a pinned clock: grades give the commitments, the workflow runs received →
investigating → handled → feedback → closed (illegal steps refused, feedback needs its text), a
missed commitment escalates up the butler's chain — named on the trail, in the lead's inbox —
and the cycle time is what the manager page shows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from cloud.ops.complaints import repo
from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import IllegalTransition, InvalidRequest
from cloud.ops.model.policy import Policy
from cloud.queries.complaints import cycle
from guanjia.core.clock import ManualClock
from tests.support.workorders import add_butler

STAFF = Actor("user", 1, "王经理", "admin")


async def test_grade_sets_commitments_and_workflow_runs(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                        policy: Policy) -> None:
    with pytest.raises(InvalidRequest, match="serious, general, minor"):
        await repo.file(conn, policy, repo.NewComplaint("c1", "urgentish", "噪音"), clock.now(), STAFF)
    c = await repo.file(conn, policy, repo.NewComplaint("c1", "serious", "保安态度恶劣", reporter_user_id=7),
                        clock.now(), Actor("user", 7, "李女士", "resident"))
    assert c["handle_due"] - c["created_at"] == timedelta(hours=24)
    assert c["close_due"] - c["created_at"] == timedelta(days=3)
    with pytest.raises(IllegalTransition) as err:
        await repo.transition(conn, c["id"], "close", STAFF, clock.now())
    assert err.value.allowed == ["investigate", "handle"]
    for action in ("investigate", "handle"):
        clock.advance(timedelta(hours=5))
        await repo.transition(conn, c["id"], action, STAFF, clock.now(), note="约谈当班保安")
    with pytest.raises(InvalidRequest, match="feedback needs"):
        await repo.transition(conn, c["id"], "feedback", STAFF, clock.now())
    await repo.transition(conn, c["id"], "feedback", STAFF, clock.now(), note="已致电业主说明处理结果")
    clock.advance(timedelta(hours=2))
    closed = await repo.transition(conn, c["id"], "close", STAFF, clock.now())
    assert closed["state"] == "closed"
    trail = await repo.trail(conn, c["id"])
    assert [(t["action"], t["actor_name"]) for t in trail] == [
        ("filed", "李女士"), ("investigate", "王经理"), ("handle", "王经理"), ("feedback", "王经理"),
        ("close", "王经理")]
    figures = await cycle(conn, ["c1"], clock.now() - timedelta(days=30), clock.now())
    assert (figures.closed, figures.mean_days, figures.open, figures.benchmark_days) == (1, 0.5, 0, 1.8)


async def test_missed_commitments_escalate_up_the_chain(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                        policy: Policy) -> None:
    manager = await add_butler(conn, "物业经理", role="manager")
    lead = await add_butler(conn, "组长", role="team_lead", manager_id=manager)
    butler = await add_butler(conn, "周师傅", manager_id=lead)
    c = await repo.file(conn, policy, repo.NewComplaint("c1", "serious", "维修后地面没清理", butler_id=butler),
                        clock.now(), STAFF)
    clock.advance(timedelta(hours=23))
    assert await repo.escalate_due(conn, clock.now()) == 0
    clock.advance(timedelta(hours=2))  # 25 h: not handled within 24 h
    assert await repo.escalate_due(conn, clock.now()) == 1
    assert await repo.escalate_due(conn, clock.now()) == 0  # next check: the close commitment
    await repo.transition(conn, c["id"], "handle", STAFF, clock.now(), note="已清理")
    clock.advance(timedelta(days=2))  # 3 d 1 h: handled, but nobody told the resident and closed it
    assert await repo.escalate_due(conn, clock.now()) == 1
    trail = [t for t in await repo.trail(conn, c["id"]) if t["action"] == "escalated"]
    assert [t["note"] for t in trail] == ["level 1: not handled in time → 组长",
                                          "level 2: not closed in time → 物业经理"]
    cur = await conn.execute(
        "SELECT butler_id, event FROM notifications WHERE event = 'complaint.escalated' ORDER BY id")
    assert await cur.fetchall() == [(lead, "complaint.escalated"), (manager, "complaint.escalated")]
    figures = await cycle(conn, ["c1"], clock.now() - timedelta(days=30), clock.now())
    assert (figures.open, figures.overdue, figures.mean_days) == (1, 1, None)


async def test_links_are_checked(conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy) -> None:
    other = await add_butler(conn, "外区管家", community="c2")
    with pytest.raises(InvalidRequest, match="does not serve"):
        await repo.file(conn, policy, repo.NewComplaint("c1", "minor", "x", butler_id=other), clock.now(), STAFF)
    with pytest.raises(InvalidRequest, match="linked work order"):
        await repo.file(conn, policy, repo.NewComplaint("c1", "minor", "x", work_order_ids=[999999]), clock.now(),
                        STAFF)
