"""A community's own wording of notification messages: checked when written (an unknown
placeholder names the ones that exist), used for that community's channel copies — per channel,
a channel's own override before ``*`` — and the shipped sentence everywhere else."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg
import pytest
from pydantic import ValidationError

from cloud.ops.model.actors import Actor
from cloud.ops.model.policy import Policy
from cloud.ops.notify import preferences, templates, wording
from cloud.ops.notify.wording import WordingIn
from cloud.ops.workorders.reports import Report, submit_report
from guanjia.core.clock import ManualClock
from tests.support.workorders import add_butler


def test_templates_are_checked_against_the_shipped_placeholders() -> None:
    templates.check_template("resident.assigned", "{butler} 师傅已接单（#{id}），请保持电话畅通。")
    for code, template, why in (
            ("resident.assigned", "{butler} 会打 {phone} 联系您", r"unknown placeholder \{phone\}; "
                                                                  r"resident.assigned has \{butler\}, \{id\}"),
            ("resident.assigned", "工单 {} 已派出", r"unknown placeholder \{\}"),
            ("resident.assigned", "工单 #{id 已派出", "unbalanced braces"),
            ("resident.assigned", "工单 #{id:>5}", "without a format or conversion"),
            ("resident.assigned", "工单 #{id!r}", "without a format or conversion"),
            ("label.state", "状况", "'label.state' is not a message that can be reworded"),
            ("complaint.state.closed", "结案", "is not a message"),
            ("nothing.here", "x", "is not a message")):
        with pytest.raises(ValueError, match=why):
            templates.check_template(code, template)
    with pytest.raises(ValidationError) as caught:
        WordingIn(code="resident.on_site", template="{butler} 到了，电话 {mobile}")
    assert caught.value.errors()[0]["loc"] == ("template",)
    assert WordingIn(code="resident.on_site", template="  ").template is None  # empty: back to shipped


async def test_a_community_rewords_its_residents_messages(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                          policy: Policy) -> None:
    for name, community in (("lv", "c1"), ("qing", "c2")):
        cur = await conn.execute("INSERT INTO users (username, role, password_hash) VALUES (%s, 'resident', 'x') "
                                 "RETURNING id", (name,))
        user = (await cur.fetchone() or (0,))[0]
        await preferences.choose(conn, user, "email", f"{name}@example.com")
        await add_butler(conn, "陈师傅", community=community)
    c1_sms = await conn.execute("INSERT INTO users (username, role, password_hash) VALUES ('sms', 'resident', 'x') "
                                "RETURNING id")
    sms_user = (await c1_sms.fetchone() or (0,))[0]
    await preferences.choose(conn, sms_user, "sms", "13812341234")
    now = clock.now()
    for item in (WordingIn(code="resident.assigned", channel="email", template="{butler} 师傅已接到您的工单 #{id}。"),
                 WordingIn(code="resident.line", channel="*", template="【绿苑物业】{text}"),
                 WordingIn(code="resident.assigned", lang="en", template="{butler} has your order #{id}.")):
        listed = await wording.save(conn, "c1", item, actor="admin", now=now)
    assert [(r.code, r.lang, r.channel) for r in listed] == [("resident.assigned", "en", "*"),
                                                             ("resident.assigned", "zh", "email"),
                                                             ("resident.line", "zh", "*")]
    assert listed[1].shipped == "工单 #{id} 已派给 {butler}。"

    ids = {}
    for name, community in (("lv", "c1"), ("qing", "c2"), ("sms", "c1")):
        cur = await conn.execute("SELECT id FROM users WHERE username = %s", (name,))
        user = (await cur.fetchone() or (0,))[0]
        wo, _ = await submit_report(conn, policy, Report(community=community, text="楼道灯不亮", reporter_user_id=user),
                                    now, Actor("user", user, name, "resident"))
        ids[name] = wo["id"]
    cur = await conn.execute("SELECT target, body FROM notifications WHERE channel IN ('email', 'sms') "
                             "AND event = 'resident.assigned' ORDER BY target")
    bodies = dict(await cur.fetchall())
    assert bodies["lv@example.com"].startswith(f"【绿苑物业】陈师傅 师傅已接到您的工单 #{ids['lv']}。")
    assert bodies["qing@example.com"].startswith(f"工单 #{ids['qing']} 已派给 陈师傅。")  # another community
    assert bodies["13812341234"] == f"【绿苑物业】工单 #{ids['sms']} 已派给 陈师傅。"  # * for SMS, shipped step

    # back to the shipped words: the next order of c1 reads as before
    await wording.save(conn, "c1", WordingIn(code="resident.line", channel="*"), actor="admin",
                       now=clock.advance(timedelta(minutes=1)))
    await wording.save(conn, "c1", WordingIn(code="resident.assigned", channel="email", template=None),
                       actor="admin", now=clock.now())
    cur = await conn.execute("SELECT id FROM users WHERE username = 'lv'")
    lv = (await cur.fetchone() or (0,))[0]
    wo, _ = await submit_report(conn, policy, Report(community="c1", text="漏水", reporter_user_id=lv), clock.now(),
                                Actor("user", lv, "lv", "resident"))
    cur = await conn.execute("SELECT body FROM notifications WHERE channel = 'email' AND work_order_id = %s AND "
                             "event = 'resident.assigned'", (wo["id"],))
    assert (await cur.fetchone() or ("",))[0].startswith(f"工单 #{wo['id']} 已派给 陈师傅。")
    cur = await conn.execute("SELECT action FROM admin_audit ORDER BY id")
    assert [r[0] for r in await cur.fetchall()] == ["wording.updated"] * 3 + ["wording.reset"] * 2
