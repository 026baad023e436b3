"""Work orders in the database: transitions and their trail, SLA clocks and escalation with a
controllable clock, volunteers, resident reports linked to open orders, ratings → star level."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.escalation import escalate_due
from cloud.ops.model.actors import Actor
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.errors import IllegalTransition, InvalidRequest, NotAllowed
from cloud.ops.model.policy import Policy
from cloud.ops.workorders import repo
from cloud.ops.workorders.reports import Report, rate, submit_report
from guanjia.core.clock import ManualClock, to_ms
from tests.support.workorders import add_butler

STAFF = Actor("user", 1, "engineer", "engineer")


def trapped(clock: ManualClock, device: str = "lift-9") -> AlarmEvent:
    return AlarmEvent(community="c1", device=device, rule="elevator_trapped", state="raise", ts=to_ms(clock.now()),
                      severity="critical", message="passengers trapped", work_order=True, device_kind="elevator",
                      building="b1")


async def test_full_lifecycle_records_every_transition(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                       policy: Policy) -> None:
    butler = await add_butler(conn, "孙师傅")
    me = Actor.butler(butler)
    result = await apply_event(conn, policy, trapped(clock), clock.now())
    wo_id = result.work_order_id
    assert wo_id is not None
    for action in ("accept", "depart", "arrive", "hold", "resume", "resolve"):
        clock.advance(timedelta(seconds=20))
        await repo.transition(conn, policy, wo_id, action, me, clock.now(), note=action, lat=30.27, lon=120.15)
    with pytest.raises(IllegalTransition) as info:
        await repo.transition(conn, policy, wo_id, "accept", me, clock.now())
    assert info.value.state == "resolved"
    assert set(info.value.allowed) == {"reopen", "close"}
    wo = await repo.get(conn, wo_id)
    assert wo["state"] == "resolved"
    assert wo["accepted_at"] <= wo["respond_due"]
    assert wo["on_site_at"] <= wo["on_site_due"]
    trail = await repo.trail(conn, wo_id)
    assert [t["action"] for t in trail] == ["opened", "assign", "accept", "depart", "arrive", "hold", "resume",
                                            "resolve"]
    assert trail[3]["lat"] == 30.27
    assert trail[3]["actor"] == f"butler:{butler}"


async def test_other_butler_may_not_act_and_volunteers_need_a_full_timer(
        conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy) -> None:
    full = await add_butler(conn, "全职")
    volunteer = await add_butler(conn, "志愿者", kind="volunteer")
    result = await apply_event(conn, policy, trapped(clock), clock.now())
    assert result.work_order_id is not None
    wo = await repo.get(conn, result.work_order_id)
    assert wo["assignee_id"] == full  # routing never picks a volunteer
    with pytest.raises(NotAllowed):
        await repo.transition(conn, policy, wo["id"], "accept", Actor.butler(volunteer), clock.now())
    handed = await repo.transition(conn, policy, wo["id"], "reassign", Actor.butler(full), clock.now(),
                                   assignee_id=volunteer, note="please take it")
    assert handed["assignee_id"] == volunteer
    assert handed["assigned_by"] == full
    with pytest.raises(NotAllowed):  # the volunteer cannot hand it back on
        await repo.transition(conn, policy, wo["id"], "reassign", Actor.butler(volunteer), clock.now(),
                              assignee_id=full)
    accepted = await repo.transition(conn, policy, wo["id"], "accept", Actor.butler(volunteer), clock.now())
    assert accepted["state"] == "accepted"


async def test_unaccepted_entrapment_escalates_up_the_chain(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                            policy: Policy) -> None:
    manager = await add_butler(conn, "物业经理", role="manager")
    lead = await add_butler(conn, "组长", role="team_lead", manager_id=manager)
    butler = await add_butler(conn, "周师傅", manager_id=lead)
    result = await apply_event(conn, policy, trapped(clock), clock.now())
    assert result.work_order_id is not None
    assert await escalate_due(conn, policy, clock.now()) == 0
    clock.advance(timedelta(seconds=59))
    assert await escalate_due(conn, policy, clock.now()) == 0  # the 1-minute answer clock still runs
    clock.advance(timedelta(seconds=2))
    assert await escalate_due(conn, policy, clock.now()) == 1
    clock.advance(timedelta(minutes=2))
    assert await escalate_due(conn, policy, clock.now()) == 1
    clock.advance(timedelta(minutes=2))
    assert await escalate_due(conn, policy, clock.now()) == 0  # chain exhausted: reminders every 30 min
    clock.advance(policy.reminder_every)
    assert await escalate_due(conn, policy, clock.now()) == 1
    trail = [t for t in await repo.trail(conn, result.work_order_id) if t["action"] == "escalated"]
    assert [t["data"]["to"] for t in trail] == [lead, manager, manager]
    cur = await conn.execute(
        "SELECT butler_id, payload->>'event' FROM notifications WHERE channel = 'inbox' ORDER BY id")
    sent = await cur.fetchall()
    assert sent[0] == (butler, "work_order.assigned")
    assert (lead, "work_order.escalated") in sent
    assert (manager, "work_order.escalated") in sent
    assert (butler, "work_order.reminder") in sent
    # accepting restarts the clock on the on-site deadline
    wo = await repo.transition(conn, policy, result.work_order_id, "accept", Actor.butler(butler), clock.now())
    assert wo["escalation_level"] == 0
    assert wo["next_escalation_at"] > clock.now()


async def test_reject_routes_to_the_next_butler(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                policy: Policy) -> None:
    first = await add_butler(conn, "甲", star=5)
    second = await add_butler(conn, "乙", star=2)
    result = await apply_event(conn, policy, trapped(clock), clock.now())
    assert result.work_order_id is not None
    wo = await repo.get(conn, result.work_order_id)
    assert wo["assignee_id"] == first
    wo = await repo.transition(conn, policy, wo["id"], "reject", Actor.butler(first), clock.now(), note="sick")
    assert (wo["state"], wo["assignee_id"]) == ("assigned", second)


async def test_resident_report_links_to_open_order_and_rating_updates_stars(
        conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy) -> None:
    butler = await add_butler(conn, "吴师傅")
    result = await apply_event(conn, policy, trapped(clock, "lift-7"), clock.now())
    resident = Actor("user", 42, "张三", "resident")
    wo, linked = await submit_report(conn, policy, Report(
        community="c1", device="lift-7", text="电梯困人了! 联系我 13812341234", reporter_name="张三",
        reporter_phone="13812341234", reporter_user_id=42), clock.now(), resident)
    assert linked
    assert wo["id"] == result.work_order_id
    other, linked_other = await submit_report(conn, policy, Report(
        community="c1", text="3号楼走廊灯坏了", location="3号楼 2层", reporter_name="李四",
        reporter_phone="13900001111", reporter_user_id=43), clock.now(), Actor("user", 43, "李四", "resident"))
    assert not linked_other
    assert other["origin"] == "resident"
    assert other["priority"] == "P2"
    assert other["respond_due"] - other["created_at"] == timedelta(hours=2)
    assert other["on_site_due"] - other["created_at"] == timedelta(hours=24)
    trail = await repo.trail(conn, wo["id"])
    linked_note = next(t["note"] for t in trail if t["action"] == "report_linked")
    assert "13812341234" not in linked_note
    assert "138****1234" in linked_note
    me = Actor.butler(butler)
    for action in ("accept", "arrive", "resolve"):
        await repo.transition(conn, policy, other["id"], action, me, clock.now())
    with pytest.raises(NotAllowed):
        await rate(conn, policy, other["id"], 5, "好", resident, clock.now())  # not the reporter
    with pytest.raises(InvalidRequest):
        await rate(conn, policy, other["id"], 6, "", Actor("user", 43, "李四", "resident"), clock.now())
    closed = await rate(conn, policy, other["id"], 1, "太慢", Actor("user", 43, "李四", "resident"), clock.now())
    assert closed["state"] == "closed"
    with pytest.raises(InvalidRequest):
        await rate(conn, policy, other["id"], 5, "again", Actor("user", 43, "李四", "resident"), clock.now())
    cur = await conn.execute("SELECT rated, rating_mean, star_level FROM butler_performance WHERE butler_id = %s",
                             (butler,))
    assert await cur.fetchone() == (1, 1.0, 3)
    cur = await conn.execute("SELECT count(*), count(*) FILTER (WHERE linked) FROM resident_reports")
    assert await cur.fetchone() == (2, 1)


async def test_auto_close_when_rule_allows(conn: psycopg.AsyncConnection[Any], clock: ManualClock) -> None:
    from cloud.ops.model.policy import Match, Override, default_policy

    policy = default_policy().model_copy(update={"overrides": [
        Override(match=Match(rule="door_flutter"), work_order=True, auto_close=True)]})
    await add_butler(conn, "郑师傅")
    raise_ = AlarmEvent(community="c1", device="gate-1", rule="door_flutter", state="raise", ts=to_ms(clock.now()),
                        severity="minor", device_kind="gate")
    result = await apply_event(conn, policy, raise_, clock.now())
    assert result.work_order_id is not None
    clock.advance(timedelta(seconds=10))
    clear = AlarmEvent(community="c1", device="gate-1", rule="door_flutter", state="clear", ts=to_ms(clock.now()))
    await apply_event(conn, policy, clear, clock.now())
    wo = await repo.get(conn, result.work_order_id)
    assert wo["state"] == "closed"
    assert [t["action"] for t in await repo.trail(conn, wo["id"])][-1] == "auto_close"


def test_priority_precedence(policy: Policy) -> None:
    # site override (entrapment on an elevator) > the rule's own priority label > severity
    assert policy.priority_for("minor", "elevator-passengers-trapped", "elevator") == "P0"
    assert policy.priority_for("critical", "elevator-door-lock-fault", "elevator", "high") == "P1"
    assert policy.priority_for("critical", "pump-dry-run", "pump") == "P1"
    assert policy.priority_for("warning", "meter-energy-drift", "meter", "low") == "P3"
    assert policy.priority_for("unknown", "x", None) == "P2"
    assert policy.skill_for("pump") == "water"
    assert policy.skill_for("gate") == "access"
    assert policy.skill_for(None) == "general"
