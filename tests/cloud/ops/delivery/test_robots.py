"""WeCom, DingTalk and Feishu group robots end to end: a resident's report is routed to a butler,
the outbox sender posts to a local stand-in of each vendor that checks the documented request
format and signature (``tests/support/vendors.py``) at the pinned time; vendor error codes decide
between retry (rate limit) and giving up at once (bad signature → ``notification_failed`` alarm)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import psycopg

from cloud.ops.delivery.robots import RobotEndpoints
from cloud.ops.delivery.sender import NotificationSender, RetryPolicy
from cloud.ops.model.actors import Actor
from cloud.ops.model.policy import Policy
from cloud.ops.workorders.reports import Report, submit_report
from guanjia.core.clock import ManualClock
from tests.cloud.ops.delivery.test_notify import factory
from tests.support.vendors import VendorReceiver
from tests.support.workorders import add_butler

KEY = "693a91f6-7aaa-4bc4-97a0-0ec2afa5aaa1"
TOKEN = "d" * 64
DING_SECRET = "SEC" + "4b" * 32
HOOK = "5e3d587e-d78e-4a07-bd07-265f269f86fd"
FEISHU_SECRET = "nIMtb7r3N9pkXyXdtAbx6e"
ROBOTS = (f"wecom://{KEY}", f"dingtalk://{TOKEN}?secret={DING_SECRET}", f"feishu://{HOOK}?secret={FEISHU_SECRET}")


def endpoints(receiver: VendorReceiver) -> RobotEndpoints:
    return RobotEndpoints(wecom=receiver.url, dingtalk=receiver.url, feishu=receiver.url)


async def report(conn: psycopg.AsyncConnection[Any], policy: Policy, clock: ManualClock) -> None:
    await submit_report(conn, policy, Report(community="c1", text="楼道灯不亮, 电话 13812341234", reporter_name="张三",
                                             reporter_phone="13812341234"), clock.now(),
                        Actor("user", 5, "张三", "resident"))


async def states(conn: psycopg.AsyncConnection[Any]) -> list[tuple[str, str, int]]:
    cur = await conn.execute("SELECT split_part(target, ':', 1), state, attempts FROM notifications "
                             "WHERE channel = 'messenger' ORDER BY target")
    return [(str(a), str(b), int(c)) for a, b, c in await cur.fetchall()]


async def test_three_robots_receive_signed_masked_messages(conn: psycopg.AsyncConnection[Any], wo_db: str,
                                                           clock: ManualClock, policy: Policy,
                                                           vendor_receiver: VendorReceiver) -> None:
    vendor_receiver.wecom_keys.add(KEY)
    vendor_receiver.dingtalk[TOKEN] = DING_SECRET
    vendor_receiver.feishu[HOOK] = FEISHU_SECRET
    await add_butler(conn, "陈师傅", messengers=ROBOTS)
    await report(conn, policy, clock)
    sender = NotificationSender(policy, clock=clock, robots=endpoints(vendor_receiver))
    assert await sender.run_once(factory(wo_db)) == 3
    assert vendor_receiver.refused == []
    assert await states(conn) == [("dingtalk", "sent", 1), ("feishu", "sent", 1), ("wecom", "sent", 1)]
    texts = {vendor: vendor_receiver.text_of(vendor, data) for vendor, data in vendor_receiver.accepted}
    assert set(texts) == {"wecom", "dingtalk", "feishu"}
    # markdown for all three, in Chinese by default, the deadline in the community's zone
    assert {v: d.get("msgtype") or d.get("msg_type") for v, d in vendor_receiver.accepted} == {
        "wecom": "markdown", "dingtalk": "markdown", "feishu": "interactive"}
    for text in texts.values():  # a group chat is a shared room: the resident stays masked
        assert "13812341234" not in text
        assert "138****1234" in text
        assert "张*" in text
        assert text.startswith("**新工单 #")
        assert "- 接单时限：" in text


async def test_wrong_secret_fails_at_once_and_raises_the_alarm(conn: psycopg.AsyncConnection[Any], wo_db: str,
                                                                clock: ManualClock, policy: Policy,
                                                                vendor_receiver: VendorReceiver) -> None:
    vendor_receiver.dingtalk[TOKEN] = "SEC" + "00" * 32  # the robot was re-keyed; our copy is stale
    vendor_receiver.feishu[HOOK] = "another-secret-123"
    await add_butler(conn, "陈师傅", messengers=ROBOTS[1:])
    await report(conn, policy, clock)
    sender = NotificationSender(policy, clock=clock, robots=endpoints(vendor_receiver))
    assert await sender.run_once(factory(wo_db)) == 2
    assert sorted(vendor_receiver.refused) == [("dingtalk", "sign"), ("feishu", "sign")]
    assert await states(conn) == [("dingtalk", "failed", 1), ("feishu", "failed", 1)]
    cur = await conn.execute("SELECT last_error FROM notifications WHERE channel = 'messenger' ORDER BY target")
    assert [r[0] for r in await cur.fetchall()] == [
        "dingtalk error 310000: sign not match",
        "feishu error 19021: sign match fail or timestamp is not within one hour from current time"]
    cur = await conn.execute("SELECT device FROM alarms WHERE rule = 'notification_failed' AND active")
    assert await cur.fetchall() == [("notify-messenger",)]


async def test_stale_timestamp_is_refused(conn: psycopg.AsyncConnection[Any], wo_db: str, clock: ManualClock,
                                          policy: Policy, vendor_receiver: VendorReceiver) -> None:
    """The signature binds the sender's clock: a sender two hours off is refused like the vendor does."""
    vendor_receiver.dingtalk[TOKEN] = DING_SECRET
    def two_hours_ahead() -> float:
        return (clock.now() + timedelta(hours=2)).timestamp()

    vendor_receiver.now = two_hours_ahead
    await add_butler(conn, "陈师傅", messengers=(ROBOTS[1],))
    await report(conn, policy, clock)
    sender = NotificationSender(policy, clock=clock, robots=endpoints(vendor_receiver))
    await sender.run_once(factory(wo_db))
    assert vendor_receiver.refused == [("dingtalk", "sign")]


async def test_rate_limit_is_retried_then_delivered(conn: psycopg.AsyncConnection[Any], wo_db: str,
                                                    clock: ManualClock, policy: Policy,
                                                    vendor_receiver: VendorReceiver) -> None:
    vendor_receiver.wecom_keys.add(KEY)
    vendor_receiver.dingtalk[TOKEN] = DING_SECRET
    vendor_receiver.feishu[HOOK] = FEISHU_SECRET
    vendor_receiver.throttle = ["wecom", "dingtalk", "feishu"]
    await add_butler(conn, "陈师傅", messengers=ROBOTS)
    await report(conn, policy, clock)
    sender = NotificationSender(policy, clock=clock, robots=endpoints(vendor_receiver), retry=RetryPolicy(3))
    assert await sender.run_once(factory(wo_db)) == 3
    assert await states(conn) == [("dingtalk", "retrying", 1), ("feishu", "retrying", 1), ("wecom", "retrying", 1)]
    clock.advance(timedelta(seconds=6))
    assert await sender.run_once(factory(wo_db)) == 3  # re-signed at the new time, accepted
    assert await states(conn) == [("dingtalk", "sent", 2), ("feishu", "sent", 2), ("wecom", "sent", 2)]
    assert vendor_receiver.refused == []


async def test_long_text_fits_wecom_limit(conn: psycopg.AsyncConnection[Any], wo_db: str, clock: ManualClock,
                                          policy: Policy, vendor_receiver: VendorReceiver) -> None:
    vendor_receiver.wecom_keys.add(KEY)
    await add_butler(conn, "陈师傅", messengers=(ROBOTS[0],))
    await submit_report(conn, policy, Report(community="c1", text="水管漏水" * 400), clock.now(),
                        Actor("user", 5, "张三", "resident"))
    sender = NotificationSender(policy, clock=clock, robots=endpoints(vendor_receiver))
    assert await sender.run_once(factory(wo_db)) == 1
    assert vendor_receiver.refused == []
    (vendor, data), = vendor_receiver.accepted
    assert len(vendor_receiver.text_of(vendor, data).encode()) <= 4096
