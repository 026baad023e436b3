"""Notifications: masking, webhook signatures and retries against a real local HTTP receiver,
email against a real aiosmtpd server, messengers through apprise (json:// to the local receiver),
failure → alarm, and the live inbox over LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import timedelta
from typing import Any

import orjson
import psycopg
import pytest

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.delivery import webhook
from cloud.ops.delivery.email import SmtpConfig
from cloud.ops.delivery.hub import InboxHub, backlog
from cloud.ops.delivery.sender import NotificationSender, RetryPolicy
from cloud.ops.model.actors import Actor
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import Policy
from cloud.ops.notify.masking import mask_name, mask_phone, mask_text
from cloud.ops.workorders.reports import Report, submit_report
from guanjia.core.clock import ManualClock, to_ms
from tests.support.receivers import HttpReceiver, SmtpReceiver
from tests.support.workorders import add_butler

ConnFactory = Callable[[], AbstractAsyncContextManager[psycopg.AsyncConnection[Any]]]


def factory(url: str) -> ConnFactory:
    @contextlib.asynccontextmanager
    async def make() -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        async with await psycopg.AsyncConnection.connect(url, autocommit=True) as c:
            yield c
    return make


def test_masking() -> None:
    assert mask_phone("13812341234") == "138****1234"
    assert mask_phone("+86 138-1234-1234") == "138****1234"
    assert mask_name("张三") == "张*"
    assert mask_name("欧阳小明") == "欧***"
    assert mask_name("John Smith") == "J*** S****"
    assert mask_text("call 13812341234 or 13900001111 now") == "call 138****1234 or 139****1111 now"
    assert mask_text("room 1203, code 12345678") == "room 1203, code 12345678"


def test_signature_roundtrip() -> None:
    body = b'{"a":1}'
    now = int(time.time())
    header = webhook.sign("s3cret", now, body)
    assert webhook.verify("s3cret", header, body, now)
    assert not webhook.verify("other", header, body, now)
    assert not webhook.verify("s3cret", header, body + b" ", now)
    assert not webhook.verify("s3cret", header, body, now + 3600)  # replay outside tolerance


def event(clock: ManualClock, device: str = "pump-3", rule: str = "pump_dry_run") -> AlarmEvent:
    return AlarmEvent(community="c1", device=device, rule=rule, state="raise", ts=to_ms(clock.now()),
                      severity="critical", message="dry run", work_order=True, device_kind="pump")


async def test_webhook_signed_and_retried_until_delivered(conn: psycopg.AsyncConnection[Any], wo_db: str,
                                                          clock: ManualClock, policy: Policy,
                                                          http_receiver: HttpReceiver) -> None:
    await conn.execute("INSERT INTO webhook_endpoints (url, secret, events) VALUES (%s, 'k3y', '{alarm.raised}')",
                       (http_receiver.url + "/hook",))
    http_receiver.statuses = [500, 503]
    await apply_event(conn, policy, event(clock), clock.now())
    sender = NotificationSender(policy, clock=clock, retry=RetryPolicy(max_attempts=5))
    assert await sender.run_once(factory(wo_db)) == 1
    cur = await conn.execute("SELECT state, attempts, next_attempt_at FROM notifications WHERE channel = 'webhook'")
    state, attempts, next_at = await cur.fetchone() or (None, None, None)
    assert (state, attempts) == ("retrying", 1)
    assert next_at == clock.now() + timedelta(seconds=5)
    assert await sender.run_once(factory(wo_db)) == 0  # not due yet
    for _ in range(2):
        clock.advance(timedelta(minutes=1))
        assert await sender.run_once(factory(wo_db)) == 1
    cur = await conn.execute("SELECT state, attempts FROM notifications WHERE channel = 'webhook'")
    assert await cur.fetchone() == ("sent", 3)
    assert len(http_receiver.requests) == 3
    deliveries = {r[1]["X-Guanjia-Delivery"] for r in http_receiver.requests}
    assert len(deliveries) == 1
    for _path, headers, body in http_receiver.requests:
        assert webhook.verify("k3y", headers["X-Guanjia-Signature"], body, clock.now().timestamp())
        assert orjson.loads(body)["event"] == "alarm.raised"
    cur = await conn.execute("SELECT ok, status FROM notification_attempts ORDER BY id")
    assert await cur.fetchall() == [(False, 500), (False, 503), (True, 200)]


async def test_failed_notification_raises_an_alarm(conn: psycopg.AsyncConnection[Any], wo_db: str,
                                                   clock: ManualClock, policy: Policy,
                                                   http_receiver: HttpReceiver) -> None:
    await conn.execute("INSERT INTO webhook_endpoints (url, secret) VALUES (%s, 'k')", (http_receiver.url,))
    http_receiver.statuses = [500] * 10
    await apply_event(conn, policy, event(clock), clock.now())
    sender = NotificationSender(policy, clock=clock, retry=RetryPolicy(max_attempts=3))
    for _ in range(4):
        await sender.run_once(factory(wo_db))
        clock.advance(timedelta(minutes=5))
    cur = await conn.execute("SELECT state, attempts FROM notifications WHERE channel = 'webhook' "
                             "AND event = 'alarm.raised'")
    assert await cur.fetchone() == ("failed", 3)
    cur = await conn.execute("SELECT device, active, work_order, message, labels ->> 'message_zh' FROM alarms "
                             "WHERE rule = 'notification_failed'")
    row = await cur.fetchone()
    assert row is not None
    assert row[:3] == ("notify-webhook", True, False)
    assert "notification" in row[3]
    assert "failed" in row[3]
    assert "发送失败" in row[4]  # both languages (issue 18)


async def test_email_and_messenger_with_masking(conn: psycopg.AsyncConnection[Any], wo_db: str,
                                                clock: ManualClock, policy: Policy,
                                                smtp_receiver: SmtpReceiver, http_receiver: HttpReceiver) -> None:
    host = http_receiver.url.removeprefix("http://")
    await add_butler(conn, "陈师傅", email="chen@example.com", messengers=(f"json://{host}/wecom",))
    await submit_report(conn, policy, Report(community="c1", text="水管漏水, 电话 13812341234", reporter_name="张三",
                                             reporter_phone="13812341234"), clock.now(),
                        Actor("user", 5, "张三", "resident"))
    smtp = SmtpConfig("127.0.0.1", smtp_receiver.port, "noreply@guanjia.test")
    sender = NotificationSender(policy, clock=clock, smtp=smtp)
    assert await sender.run_once(factory(wo_db)) == 2
    cur = await conn.execute("SELECT channel, state FROM notifications WHERE channel <> 'inbox' ORDER BY channel")
    assert await cur.fetchall() == [("email", "sent"), ("messenger", "sent")]
    assert len(smtp_receiver.messages) == 1
    mail = smtp_receiver.messages[0]
    assert mail["To"] == "chen@example.com"
    assert "[P2]" in str(mail["Subject"])
    # the assigned butler must be able to call the resident back: the email shows the number
    mail_body = mail.get_payload(decode=True)
    assert isinstance(mail_body, bytes)
    assert "13812341234" in mail_body.decode()
    # a messenger group is a shared room: masked
    (path, _headers, body), = http_receiver.requests
    assert path == "/wecom"
    text = body.decode("utf-8")
    assert "13812341234" not in text
    assert "138****1234" in text
    assert "张*" in orjson.loads(body)["message"]


async def test_inbox_hub_receives_live_over_listen_notify(conn: psycopg.AsyncConnection[Any], wo_db: str,
                                                          clock: ManualClock, policy: Policy) -> None:
    butler = await add_butler(conn, "林师傅")
    async with InboxHub(wo_db) as hub, hub.subscribe(butler) as queue:
        await asyncio.wait_for(hub.connected.wait(), 10)
        result = await apply_event(conn, policy, event(clock, "lift-2", "elevator_trapped"), clock.now())
        message = await asyncio.wait_for(queue.get(), 10)
    assert message["butler"] == butler
    assert message["event"] == "work_order.assigned"
    assert message["payload"]["work_order"]["id"] == result.work_order_id
    assert hub.subscribers == 0
    replay = await backlog(conn, butler, 0)
    assert [m["id"] for m in replay] == [message["id"]]
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()
