"""Every alarm and every alarm-born work order in Chinese and English (issue 18), against a real
database: the edge's ``message_zh`` label and the cloud-born alarms' own Chinese both reach the
order's ``title_zh``; the butler's notification and a re-render speak each reader's language."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.alarms.offline import offline_event
from cloud.ops.model.actors import Actor
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import DEFAULT_POLICY, Inhibition, Match, Override, Policy, load_policy
from cloud.ops.notify.outbox import render_work_order, resident_step
from cloud.ops.workorders import repo
from guanjia.core.clock import ManualClock, to_ms
from guanjia.core.errors import ConfigError
from tests.support.workorders import add_butler

MIGRATION = Path(__file__).parents[4] / "cloud" / "db" / "migrations" / "640_work_order_title_zh.sql"


def leak(clock: ManualClock, state: str = "raise", **kw: Any) -> AlarmEvent:
    """A site's own rule (not in the shipped library, so no rule title stands in for the stored one)."""
    return AlarmEvent(community="c1", device="pump-3", rule="site-basement-leak", state=state,  # type: ignore[arg-type]
                      ts=to_ms(clock.now()), severity=kw.pop("severity", "major"),
                      message=kw.pop("message", "pump-3: water on the floor"),
                      work_order=True, gateway="gw1", device_kind="pump", building="b1",
                      labels=kw.pop("labels", {"message_zh": "pump-3：地面积水"}), **kw)


async def inbox_subjects(conn: psycopg.AsyncConnection[Any], wo_id: int) -> list[str]:
    cur = await conn.execute("SELECT subject FROM notifications WHERE channel = 'inbox' AND work_order_id = %s",
                             (wo_id,))
    return [row[0] for row in await cur.fetchall()]


async def test_an_edge_alarms_chinese_message_is_its_orders_chinese_title(
        conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy) -> None:
    await add_butler(conn, "王师傅", skills=("water",))
    raised = await apply_event(conn, policy, leak(clock), clock.now())
    assert raised.work_order_id is not None
    wo = await repo.get(conn, raised.work_order_id)
    assert (wo["title"], wo["title_zh"]) == ("pump-3: water on the floor", "pump-3：地面积水")
    # the butler has no account language: Chinese, the default
    (subject,) = await inbox_subjects(conn, wo["id"])
    assert "pump-3：地面积水" in subject
    assert "water on the floor" not in subject
    en_subject, en_body, payload = render_work_order(wo, "work_order.assigned", reveal_pii=True, lang="en")
    assert "pump-3: water on the floor" in en_subject
    assert "地面积水" not in en_subject + en_body
    assert (payload["work_order"]["title"], payload["work_order"]["title_zh"]) == (wo["title"], wo["title_zh"])


async def test_a_newer_event_keeps_both_languages_of_the_alarm_in_step(
        conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy) -> None:
    await apply_event(conn, policy, leak(clock), clock.now())
    clock.advance(timedelta(seconds=1))
    await apply_event(conn, policy, leak(clock, severity="critical", message="pump-3: water rising",
                                         labels={"message_zh": "pump-3：积水上涨", "kind": "pump"}), clock.now())
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT message, labels FROM alarms WHERE rule = 'site-basement-leak'")
        alarm = await cur.fetchone()
    assert alarm is not None
    assert (alarm["message"], alarm["labels"]["message_zh"]) == ("pump-3: water rising", "pump-3：积水上涨")


async def test_a_gateway_offline_alarm_is_born_in_both_languages(
        conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy) -> None:
    await add_butler(conn, "李师傅", skills=("general", "gateway"))
    now_policy = policy.model_copy(update={"inhibition": Inhibition(enabled=False)})
    event = offline_event("c1", "gw9", "raise", clock.now(), "gateway reported offline (last will)",
                          "网关报告离线（遗嘱消息）")
    raised = await apply_event(conn, now_policy, event, clock.now())
    assert raised.work_order_id is not None
    wo = await repo.get(conn, raised.work_order_id)
    assert wo["title"] == "gw9: gateway reported offline (last will)"
    assert wo["title_zh"] == "gw9：网关报告离线（遗嘱消息）"
    zh_subject, _, _ = render_work_order(wo, "work_order.assigned", reveal_pii=True, lang="zh")
    en_subject, _, _ = render_work_order(wo, "work_order.assigned", reveal_pii=True, lang="en")
    assert "网关报告离线" in zh_subject
    assert "last will" not in zh_subject
    assert "last will" in en_subject
    assert "网关" not in en_subject


async def test_a_message_written_as_chinese_slash_english_is_stored_as_the_two(
        conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy) -> None:
    """The ingest's security alarms and the analytics explanations write one ``中文 / English``
    string; the lifecycle stores it as the two languages, like every other alarm."""
    combined = "安全告警：网关 gw1 的批次序号重复。/ Security: gateway gw1 sent a duplicate seq."
    await apply_event(conn, policy, leak(clock, message=combined, labels={}), clock.now())
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT message, labels FROM alarms")
        alarm = await cur.fetchone()
    assert alarm is not None
    assert alarm["message"] == "Security: gateway gw1 sent a duplicate seq."
    assert alarm["labels"]["message_zh"] == "安全告警：网关 gw1 的批次序号重复。"


def test_an_override_title_needs_both_languages_and_the_error_names_the_line(tmp_path: Path) -> None:
    text = Path(DEFAULT_POLICY).read_text(encoding="utf-8")
    marker = "  - match: {rule: call-button-press, kind: call_button}\n"
    assert marker in text
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace(marker, marker + "    title: Call button pressed\n"), encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_policy(path)
    assert "policy.yaml:" in str(err.value)
    assert "title_zh" in str(err.value)
    path.write_text(text.replace(marker, marker + "    title: Call button pressed\n    title_zh: 一键呼叫\n"),
                    encoding="utf-8")
    override = load_policy(path).override_for("call-button-press", "call_button")
    assert override is not None
    assert (override.title, override.title_zh) == ("Call button pressed", "一键呼叫")


async def test_an_override_titles_the_order_in_both_languages(
        conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy) -> None:
    titled = policy.model_copy(update={"overrides": [
        Override(match=Match(rule="site-basement-leak"), title="Basement flooding", title_zh="地下室进水"),
        *policy.overrides]})
    raised = await apply_event(conn, titled, leak(clock), clock.now())
    assert raised.work_order_id is not None
    wo = await repo.get(conn, raised.work_order_id)
    assert (wo["title"], wo["title_zh"]) == ("pump-3: Basement flooding", "pump-3：地下室进水")


async def test_the_migration_backfills_existing_orders_from_their_alarms(
        conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy) -> None:
    raised = await apply_event(conn, policy, leak(clock), clock.now())
    manual = await repo.open_order(conn, policy, repo.NewOrder(community="c1", title="门禁坏了", origin="staff",
                                                               priority="P2"), clock.now(), Actor.system("test"))
    assert manual is not None
    await conn.execute("UPDATE work_orders SET title_zh = NULL")  # as they were before migration 640
    await conn.execute("UPDATE alarms SET labels = %s", (Jsonb({"message_zh": "地面积水"}),))  # without the device
    await conn.execute(MIGRATION.read_text(encoding="utf-8"))
    assert raised.work_order_id is not None
    alarm_born, typed = await repo.get(conn, raised.work_order_id), await repo.get(conn, manual["id"])
    assert alarm_born["title_zh"] == "pump-3：地面积水"
    assert typed["title_zh"] == typed["title"] == "门禁坏了"  # the words someone typed: one text for both


def test_a_residents_step_names_the_order_in_the_readers_language() -> None:
    """The phone page, its live feed and the resident's channel copy word a step at read time."""
    payload = {"step": "received", "work_order": 7, "title": "pump-3: water on the floor",
               "title_zh": "pump-3：地面积水"}
    assert "pump-3：地面积水" in resident_step(payload, "zh")
    assert "pump-3: water on the floor" in resident_step(payload, "en")
    assert "water on the floor" in resident_step(payload | {"title_zh": None}, None)  # a row from before
