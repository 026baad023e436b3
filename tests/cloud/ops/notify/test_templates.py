"""The one template table: every code in both languages, Chinese by default, English on request,
times in the community's zone, and each channel's shape (markdown, one short SMS line, email)."""

from __future__ import annotations

import string
from datetime import UTC, datetime

import pytest

from cloud.ops.notify import templates
from cloud.ops.notify.outbox import RESIDENT_STEPS, render_work_order, resident_copy

WO = {"id": 7, "title": "lift-2: 困人", "priority": "P0", "state": "assigned", "community": "c1", "building": "b1",
      "device": "lift-2", "reporter_name": "张三", "reporter_phone": "13812341234", "description": "电梯困人",
      "respond_due": datetime(2026, 1, 5, 2, 5, tzinfo=UTC), "on_site_due": datetime(2026, 1, 5, 2, 30, tzinfo=UTC)}


@pytest.mark.parametrize("code", sorted(templates.TEXTS))
def test_both_languages_use_the_same_placeholders(code: str) -> None:
    zh, en = templates.TEXTS[code]
    fields = [{f for _, f, _, _ in string.Formatter().parse(t) if f} for t in (zh, en)]
    assert fields[0] == fields[1], code
    assert any("\u4e00" <= ch <= "\u9fff" for ch in zh) or zh in ("{text}",), code


def test_every_resident_step_and_work_order_state_has_words() -> None:
    for step in RESIDENT_STEPS:
        assert templates.has(f"resident.{step}")
    for state in ("new", "assigned", "accepted", "on_the_way", "on_site", "on_hold", "resolved", "closed",
                  "rejected", "cancelled"):
        assert templates.has(f"state.{state}")


def test_chinese_by_default_english_on_request_local_times() -> None:
    assert templates.text("resident.assigned", None, id=3, butler="陈师傅") == "工单 #3 已派给 陈师傅。"
    assert templates.text("resident.assigned", "en", id=3, butler="Chen") == "Work order #3 is assigned to Chen."
    moment = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    assert templates.local(moment) == "01-05 10:00"  # Asia/Shanghai by default
    assert templates.local(moment, "Europe/Berlin") == "01-05 03:00"
    assert templates.local(moment, "Not/AZone") == "01-05 10:00"
    assert templates.text("no.such.code", "en") == "no.such.code"


def test_work_order_per_channel() -> None:
    subject, body, payload = render_work_order(WO, "work_order.assigned", reveal_pii=False, fmt="markdown")
    assert subject == "[P0] 新工单 #7：lift-2: 困人"
    assert body.splitlines()[0] == "**新工单 #7：lift-2: 困人**"
    assert "- 接单时限：01-05 10:05" in body
    assert "- 到场时限：01-05 10:30" in body
    assert "张* 138****1234" in body
    assert "13812341234" not in body
    assert payload["work_order"]["reporter_phone"] == "138****1234"
    subject, body, _ = render_work_order(WO, "work_order.assigned", reveal_pii=True, lang="en", fmt="email",
                                         tz="Europe/Berlin")
    assert subject == "[P0] New work order #7: lift-2: 困人"
    assert "Accept by: 01-05 03:05" in body
    assert "Reporter: 张三 13812341234" in body
    _subject, body, _ = render_work_order(WO | {"escalation_level": 2}, "work_order.escalated", reveal_pii=True,
                                          fmt="markdown")
    assert "- 升级：第 2 级" in body
    subject, body, _ = render_work_order(WO, "work_order.escalated", reveal_pii=False, fmt="sms")
    assert subject == body
    assert subject.startswith("[P0] 工单 #7 已升级")
    assert len(subject) <= templates.SMS_MAX


def test_resident_copy_per_channel() -> None:
    payload = {"step": "on_site", "work_order": 9, "title": "楼道灯", "state": "on_site", "butler": "陈师傅"}
    now = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)
    sms = resident_copy("sms", "13812341234", payload, None, None, now)
    assert sms["subject"] == sms["body"] == "陈师傅 已到达现场（#9）。"
    mail = resident_copy("email", "a@example.com", payload, "en", "Asia/Shanghai", now)
    assert mail["subject"] == "[Guanjia] Work order #9 progress"
    assert mail["body"].splitlines() == ["陈师傅 has arrived (#9).", "", "State: On site", "Time: 01-05 10:00"]
    robot = resident_copy("messenger", "wecom://abcdefgh12345678", payload, None, None, now)
    assert robot["payload"]["format"] == "markdown"
    assert robot["body"].splitlines()[0] == "**陈师傅 已到达现场（#9）。**"


def test_alarm_born_title_in_the_readers_language() -> None:
    wo = WO | {"title": "lift-2: passengers trapped at floor 3 (door closed)", "description": "passengers trapped"}
    subject, body, payload = render_work_order(wo, "work_order.assigned", reveal_pii=True,
                                               rule="elevator-passengers-trapped")
    assert subject == "[P0] 新工单 #7：lift-2：电梯困人"
    assert "passengers trapped" in body  # the edge's own words stay, as the details line
    assert payload["work_order"]["title"] == wo["title"]  # webhooks: the stored title, language-free
    subject, _body, _payload = render_work_order(wo, "work_order.escalated", reveal_pii=True, lang="en",
                                                 rule="elevator-passengers-trapped")
    assert subject == "[P0] Work order #7 escalated: lift-2: Passengers trapped"
    subject, _body, _payload = render_work_order(wo, "work_order.assigned", reveal_pii=True, rule="no-such-rule")
    assert subject == "[P0] 新工单 #7：lift-2: passengers trapped at floor 3 (door closed)"
