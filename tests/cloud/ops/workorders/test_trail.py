"""The readable trail: people's names (a resident masked unless the reader may see them), actions
and states in Chinese by default and English on request, the escalation note rendered from its
parameters, the rating's close credited to the rating — never ``butler:1`` or ``report_linked``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.escalation import escalate_due
from cloud.ops.model.actors import Actor
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import Policy
from cloud.ops.workorders import repo
from cloud.ops.workorders.reports import Report, rate, submit_report
from cloud.ops.workorders.trail import alarm_history, work_order_trail
from guanjia.core.clock import ManualClock, to_ms
from tests.support.workorders import add_butler


async def test_names_and_words(conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy) -> None:
    cur = await conn.execute("INSERT INTO users (username, role, password_hash, display_name) "
                             "VALUES ('li', 'resident', 'x', '李小红') RETURNING id")
    row = await cur.fetchone()
    assert row is not None
    li = Actor("user", int(row[0]), "李小红", "resident")
    manager = await add_butler(conn, "物业经理", role="manager")
    butler = await add_butler(conn, "周师傅", manager_id=manager)
    wo, _ = await submit_report(conn, policy, Report(community="c1", text="门禁坏了", device="gate-1",
                                                     reporter_user_id=li.id), clock.now(), li)
    await submit_report(conn, policy, Report(community="c1", text="门禁还是坏", device="gate-1",
                                             reporter_user_id=li.id), clock.now(), li)
    for action in ("accept", "arrive", "resolve"):
        clock.advance(timedelta(minutes=1))
        await repo.transition(conn, policy, wo["id"], action, Actor.butler(butler), clock.now())
    await rate(conn, policy, wo["id"], 5, "好", li, clock.now())
    masked = await work_order_trail(conn, wo["id"], None, reveal_pii=False)
    assert [(e.actor_name, e.action_text) for e in masked] == [
        ("业主 李**", "创建工单"), ("自动派单", "派单"), ("业主 李**", "关联业主报修"), ("周师傅", "接单"),
        ("周师傅", "到达现场"), ("周师傅", "处理完成"), ("业主 李**", "业主评价"), ("业主评价", "关闭")]
    assert masked[-1].note == ""  # not "closed by the rating of user:N"
    assert masked[-1].to_state_text == "已关闭"
    english = await work_order_trail(conn, wo["id"], "en", reveal_pii=True)
    assert [(e.actor_name, e.action_text) for e in english][2:4] == [
        ("a resident 李小红", "linked a resident's report"), ("周师傅", "accepted")]
    assert not any(":" in e.actor_name or "_" in e.action_text for e in masked + english)


async def test_escalation_note_and_alarm_history(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                 policy: Policy) -> None:
    manager = await add_butler(conn, "物业经理", role="manager")
    await add_butler(conn, "周师傅", manager_id=manager)
    event = AlarmEvent(community="c1", device="lift-9", rule="elevator_trapped", state="raise", ts=to_ms(clock.now()),
                       severity="critical", message="passengers trapped", work_order=True, device_kind="elevator",
                       source="edge", gateway="gw-1")
    result = await apply_event(conn, policy, event, clock.now())
    assert result.work_order_id is not None
    assert result.alarm_id is not None
    clock.advance(timedelta(minutes=2))
    assert await escalate_due(conn, policy, clock.now()) == 1
    zh = [e for e in await work_order_trail(conn, result.work_order_id, "zh", reveal_pii=True)
          if e.action == "escalated"]
    assert [(e.actor_name, e.action_text, e.note) for e in zh] == [("超时升级", "升级", "第 1 级：未按时接单")]
    en = [e for e in await work_order_trail(conn, result.work_order_id, "en", reveal_pii=True)
          if e.action == "escalated"]
    assert en[0].note == "level 1: not accepted in time"
    history = await alarm_history(conn, result.alarm_id, "zh")
    assert (history[0].actor_name, history[0].action_text) == ("网关 gw-1", "告警触发")
