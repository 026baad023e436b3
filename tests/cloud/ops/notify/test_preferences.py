"""A resident's (or a staff member's) chosen channel: checked when set with a message naming the
field; every step of the resident's order then reaches the inbox *and* that channel, in their
language with community-local times, through the real local receivers (Aliyun SMS stand-in,
aiosmtpd, a WeCom robot stand-in), with nobody's phone number in it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import orjson
import psycopg
import pytest

from cloud.ops.delivery.email import SmtpConfig
from cloud.ops.delivery.robots import RobotEndpoints
from cloud.ops.delivery.sender import NotificationSender
from cloud.ops.delivery.sms import SmsConfig
from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import InvalidRequest
from cloud.ops.model.policy import Policy
from cloud.ops.notify import preferences
from cloud.ops.workorders import repo
from cloud.ops.workorders.reports import Report, submit_report
from guanjia.core.clock import ManualClock
from tests.cloud.ops.delivery.test_notify import factory
from tests.support.receivers import SmtpReceiver
from tests.support.vendors import VendorReceiver
from tests.support.workorders import add_butler

KEY = "693a91f6-7aaa-4bc4-97a0-0ec2afa5aaa1"


async def resident(conn: psycopg.AsyncConnection[Any], name: str, lang: str | None = None) -> int:
    cur = await conn.execute(
        "INSERT INTO users (username, role, password_hash, display_name, lang) VALUES (%s, 'resident', 'x', %s, %s) "
        "RETURNING id", (name, name, lang))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


def test_validation_names_the_field() -> None:
    assert preferences.validate("sms", "+86 138-1234-1234") == preferences.Preference("sms", "13812341234")
    assert preferences.validate("inapp", "ignored") == preferences.Preference("inapp", None)
    assert preferences.validate("messenger", "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=" + KEY).target \
        == f"wecom://{KEY}"
    for channel, target, why in (("sms", "010-12345678", "target: not a mainland mobile"),
                                 ("email", "nobody", "target: not an email"),
                                 ("messenger", "wxwork://abc", "wecombot://"),
                                 ("email", "", "target: channel email needs a target"),
                                 ("pigeon", "x", "channel: 'pigeon' is not one of inapp, sms, email, messenger")):
        with pytest.raises(InvalidRequest, match=why):
            preferences.validate(channel, target)


async def walk(conn: psycopg.AsyncConnection[Any], policy: Policy, clock: ManualClock, user: int) -> int:
    butler = await add_butler(conn, "陈师傅", phone="13900001111")
    wo, _ = await submit_report(conn, policy, Report(community="c1", text="楼道灯不亮", reporter_user_id=user,
                                                     reporter_phone="13812341234"), clock.now(),
                                Actor("user", user, "李女士", "resident"))
    me = Actor.butler(butler, "陈师傅")
    for action in ("accept", "depart", "arrive", "resolve"):
        clock.advance(timedelta(minutes=3))
        await repo.transition(conn, policy, wo["id"], action, me, clock.now())
    return int(wo["id"])


async def test_sms_resident_hears_every_step(conn: psycopg.AsyncConnection[Any], wo_db: str, clock: ManualClock,
                                             policy: Policy, vendor_receiver: VendorReceiver) -> None:
    vendor_receiver.aliyun["KEYID123"] = "secret123"
    user = await resident(conn, "li")
    await preferences.choose(conn, user, "sms", "138 1234 1234")
    wo_id = await walk(conn, policy, clock, user)
    sms = SmsConfig.parse(f"aliyunsms+http://KEYID123:secret123@127.0.0.1:{vendor_receiver.port}"
                          f"?sign_name={quote('管家')}&template=SMS_1")
    sender = NotificationSender(policy, clock=clock, sms=sms)
    await sender.run_once(factory(wo_db))
    assert vendor_receiver.refused == []
    titles = [orjson.loads(q["TemplateParam"])["title"] for v, q in vendor_receiver.accepted if v == "aliyun"]
    assert sorted(titles) == sorted([
        f"已收到您的报修：工单 #{wo_id}（楼道灯不亮）。", f"工单 #{wo_id} 已派给 陈师傅。",
        f"陈师傅 正在赶来（#{wo_id}）。", f"陈师傅 已到达现场（#{wo_id}）。", f"工单 #{wo_id} 已处理完成，请您评价。"])
    assert {q["PhoneNumbers"] for _v, q in vendor_receiver.accepted} == {"13812341234"}
    assert not any("13900001111" in t for t in titles)  # the butler's phone is not the resident's business
    cur = await conn.execute("SELECT count(*) FROM notifications WHERE user_id = %s AND channel = 'inbox'", (user,))
    assert await cur.fetchone() == (5,)  # and the inbox has every step too


async def test_email_in_english_with_local_time_and_inapp_stays_quiet(
        conn: psycopg.AsyncConnection[Any], wo_db: str, clock: ManualClock, policy: Policy,
        smtp_receiver: SmtpReceiver) -> None:
    user = await resident(conn, "amy", lang="en")
    quiet = await resident(conn, "wang")
    await preferences.choose(conn, user, "email", "amy@example.com")
    await walk(conn, policy, clock, user)
    await submit_report(conn, policy, Report(community="c1", text="漏水", reporter_user_id=quiet), clock.now(),
                        Actor("user", quiet, "王", "resident"))
    sender = NotificationSender(policy, clock=clock, smtp=SmtpConfig("127.0.0.1", smtp_receiver.port, "n@g.test"))
    await sender.run_once(factory(wo_db))
    mails = [m for m in smtp_receiver.messages if m["To"] == "amy@example.com"]
    assert len(mails) == 5
    bodies = []
    for mail in mails:
        raw = mail.get_payload(decode=True)
        assert isinstance(raw, bytes)
        bodies.append(raw.decode())
    assert all(str(m["Subject"]).startswith("[Guanjia] Work order #") for m in mails)
    assert any("is assigned to 陈师傅." in b for b in bodies)
    assert any("Time: 01-05 10:00" in b for b in bodies)  # 02:00 UTC, in Asia/Shanghai
    cur = await conn.execute("SELECT channel FROM notifications WHERE user_id IS NULL AND butler_id IS NULL "
                             "AND target <> '' AND channel <> 'webhook' AND work_order_id = "
                             "(SELECT work_order_id FROM notifications WHERE user_id = %s LIMIT 1)", (quiet,))
    assert await cur.fetchall() == []  # in-app only: no channel copy for wang


async def test_staff_preference_in_english_and_inapp_only(conn: psycopg.AsyncConnection[Any], wo_db: str,
                                                          clock: ManualClock, policy: Policy,
                                                          vendor_receiver: VendorReceiver) -> None:
    vendor_receiver.wecom_keys.add(KEY)
    cur = await conn.execute("INSERT INTO users (username, role, password_hash, lang) VALUES ('chen', 'butler', 'x', "
                             "'en') RETURNING id")
    row = await cur.fetchone()
    assert row is not None
    butler = await add_butler(conn, "Chen", email="chen@example.com")
    await conn.execute("UPDATE butlers SET user_id = %s WHERE id = %s", (row[0], butler))
    await preferences.choose(conn, int(row[0]), "messenger", f"wecom://{KEY}")
    await submit_report(conn, policy, Report(community="c1", text="door broken"), clock.now(),
                        Actor("user", 9, "x", "resident"))
    sender = NotificationSender(policy, clock=clock, robots=RobotEndpoints(wecom=vendor_receiver.url))
    await sender.run_once(factory(wo_db))
    (vendor, data), = vendor_receiver.accepted
    assert vendor_receiver.text_of(vendor, data).startswith("**New work order #")
    await preferences.choose(conn, int(row[0]), "inapp", None)
    await submit_report(conn, policy, Report(community="c1", text="lamp out"), clock.now(),
                        Actor("user", 9, "x", "resident"))
    cur = await conn.execute("SELECT channel, count(*) FROM notifications WHERE butler_id = %s GROUP BY channel "
                             "ORDER BY channel", (butler,))
    assert await cur.fetchall() == [("email", 1), ("inbox", 2), ("messenger", 1)]
