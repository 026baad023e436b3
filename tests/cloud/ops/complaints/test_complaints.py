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
    cur = await conn.execute("SELECT subject FROM notifications WHERE event = 'complaint.escalated' ORDER BY id")
    assert [r[0] for r in await cur.fetchall()] == [  # in the words of the person told (Chinese by default)
        f"【重大】投诉 #{c['id']} 未按承诺时间处理，已升级至第 1 级",
        f"【重大】投诉 #{c['id']} 未按承诺时间办结，已升级至第 2 级"]
    figures = await cycle(conn, ["c1"], clock.now() - timedelta(days=30), clock.now())
    assert (figures.open, figures.overdue, figures.mean_days) == (1, 1, None)


async def test_links_are_checked(conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy) -> None:
    other = await add_butler(conn, "外区管家", community="c2")
    with pytest.raises(InvalidRequest, match="does not serve"):
        await repo.file(conn, policy, repo.NewComplaint("c1", "minor", "x", butler_id=other), clock.now(), STAFF)
    with pytest.raises(InvalidRequest, match="linked work order"):
        await repo.file(conn, policy, repo.NewComplaint("c1", "minor", "x", work_order_ids=[999999]), clock.now(),
                        STAFF)


async def test_resident_hears_each_step_and_answers_the_feedback(conn: psycopg.AsyncConnection[Any],
                                                                 clock: ManualClock, policy: Policy) -> None:
    from cloud.ops.delivery.hub import resident_backlog
    from cloud.ops.model.errors import NotFound
    from cloud.ops.notify import preferences
    from cloud.ops.notify.outbox import resident_step

    cur = await conn.execute("INSERT INTO users (username, role, password_hash, lang) VALUES ('amy', 'resident', 'x', "
                             "'en') RETURNING id")
    row = await cur.fetchone()
    assert row is not None
    amy = Actor("user", int(row[0]), "Amy", "resident")
    await preferences.choose(conn, int(row[0]), "sms", "13812341234")
    c = await repo.file(conn, policy, repo.NewComplaint("c1", "general", "楼道堆物没人管", reporter_user_id=amy.id),
                        clock.now(), amy)
    for action, note in (("investigate", ""), ("handle", ""), ("feedback", "已清理楼道并告知邻居")):
        await repo.transition(conn, c["id"], action, STAFF, clock.now(), note=note)
    with pytest.raises(NotFound):
        await repo.reply(conn, c["id"], True, "", Actor("user", 999, "x", "resident"), clock.now())
    again = await repo.reply(conn, c["id"], False, "还是有堆物", amy, clock.now())
    assert again["state"] == "investigating"
    with pytest.raises(IllegalTransition):
        await repo.reply(conn, c["id"], True, "", amy, clock.now())
    for action, note in (("handle", ""), ("feedback", "物业已清走")):
        await repo.transition(conn, c["id"], action, STAFF, clock.now(), note=note)
    done = await repo.reply(conn, c["id"], True, "好的", amy, clock.now())
    assert done["state"] == "closed"
    messages = await resident_backlog(conn, int(row[0]), 0)
    zh = [resident_step(m["payload"], "zh") for m in messages]
    assert zh[0] == f"已收到您的投诉 #{c['id']}（一般），我们承诺 01-08 10:00 前处理。"  # 3 days, Asia/Shanghai
    assert zh[3] == f"投诉 #{c['id']} 的处理结果：已清理楼道并告知邻居　请告诉我们您是否满意。"
    assert resident_step(messages[-1]["payload"], "en") == f"Thank you; complaint #{c['id']} is closed."
    assert [m["event"] for m in messages] == [
        "complaint.filed", "complaint.investigate", "complaint.handle", "complaint.feedback",
        "complaint.resident_unsatisfied", "complaint.handle", "complaint.feedback", "complaint.resident_satisfied"]
    cur = await conn.execute("SELECT subject, body FROM notifications WHERE channel = 'sms' ORDER BY id")
    texts = await cur.fetchall()
    assert len(texts) == 8  # the resident chose SMS: each step, in English, short
    full = f"We received your complaint #{c['id']} (general); we will handle it by 01-08 10:00."
    assert texts[0][0] == full[:34] + "…"
    trail = await repo.trail(conn, c["id"])
    assert [t["action"] for t in trail][-2:] == ["feedback", "resident_satisfied"]
