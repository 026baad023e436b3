"""SMS through the Aliyun adapter: a P0 order nobody accepted escalates by text message to the next
person up; the local Aliyun stand-in checks the RPC signature (HMAC-SHA1, version 1.0), the
common parameters and the timestamp at the pinned time. Configuration errors name what is missing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import orjson
import psycopg
import pytest

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.delivery.aliyun import percent_encode
from cloud.ops.delivery.errors import DeliveryConfigError
from cloud.ops.delivery.sender import NotificationSender, RetryPolicy
from cloud.ops.delivery.sms import SmsConfig, request_params
from cloud.ops.escalation import escalate_due
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import Policy
from cloud.ops.notify.preferences import normalise_phone
from guanjia.core.clock import ManualClock, to_ms
from tests.cloud.ops.delivery.test_notify import factory
from tests.support.vendors import VendorReceiver
from tests.support.workorders import add_butler

KEY_ID, KEY_SECRET = "LTAI5tExampleKeyId", "exampleSecret/+=*~ 1"


def config(receiver: VendorReceiver, secret: str = KEY_SECRET) -> SmsConfig:
    return SmsConfig.parse(f"aliyunsms+http://{KEY_ID}:{quote(secret, safe='')}@127.0.0.1:{receiver.port}"
                           f"?sign_name={quote('管家')}&template=SMS_154950909")


def test_config_parse_and_errors() -> None:
    parsed = SmsConfig.parse(f"aliyunsms://{KEY_ID}:s3cret@dysmsapi.aliyuncs.com?sign_name=x&template=SMS_1")
    assert (parsed.endpoint, parsed.access_key_secret, parsed.region) == (
        "https://dysmsapi.aliyuncs.com/", "s3cret", "cn-hangzhou")
    assert "s3cret" not in repr(parsed)
    with pytest.raises(DeliveryConfigError, match="aliyunsms://"):
        SmsConfig.parse("tencentsms://a:b@host")
    with pytest.raises(DeliveryConfigError, match="sign_name, template"):
        SmsConfig.parse(f"aliyunsms://{KEY_ID}:s@dysmsapi.aliyuncs.com")


def test_percent_encoding_and_phone() -> None:
    assert percent_encode("a b*c~d/é") == "a%20b%2Ac~d%2F%C3%A9"
    assert normalise_phone("+86 138-1234-1234") == "13812341234"
    assert normalise_phone("010-12345678") is None


def test_signed_parameters_carry_the_pinned_time() -> None:
    cfg = SmsConfig(KEY_ID, KEY_SECRET, "管家", "SMS_1")
    at = datetime(2026, 12, 5, 16, 30, 5, tzinfo=UTC)
    params = request_params(cfg, "13812341234", "x" * 50, at, "nonce-1")
    assert params["Timestamp"] == "2026-12-05T16:30:05Z"
    assert orjson.loads(params["TemplateParam"]) == {"title": "x" * 35}
    assert params["Signature"] == request_params(cfg, "13812341234", "x" * 50, at, "nonce-1")["Signature"]
    assert params["Signature"] != request_params(cfg, "13812341234", "x" * 50, at, "nonce-2")["Signature"]


def trapped(clock: ManualClock) -> AlarmEvent:
    return AlarmEvent(community="c1", device="lift-9", rule="elevator_trapped", state="raise", ts=to_ms(clock.now()),
                      severity="critical", message="passengers trapped", work_order=True, device_kind="elevator",
                      building="b1")


async def test_unaccepted_p0_escalates_by_sms(conn: psycopg.AsyncConnection[Any], wo_db: str, clock: ManualClock,
                                              policy: Policy, vendor_receiver: VendorReceiver) -> None:
    vendor_receiver.aliyun[KEY_ID] = KEY_SECRET
    lead = await add_butler(conn, "组长", role="team_lead", phone="+86 139-0000-1111")
    await add_butler(conn, "周师傅", manager_id=lead, phone="13700002222")
    result = await apply_event(conn, policy, trapped(clock), clock.now())
    assert result.work_order_id is not None
    cur = await conn.execute("SELECT count(*) FROM notifications WHERE channel = 'sms'")
    assert await cur.fetchone() == (0,)  # assignment itself goes to the app, not by text
    clock.advance(timedelta(seconds=61))
    assert await escalate_due(conn, policy, clock.now()) == 1
    cur = await conn.execute("SELECT butler_id, target, state FROM notifications WHERE channel = 'sms'")
    assert await cur.fetchall() == [(lead, "+86 139-0000-1111", "pending")]
    sender = NotificationSender(policy, clock=clock, sms=config(vendor_receiver))
    assert await sender.run_once(factory(wo_db)) == 1
    assert vendor_receiver.refused == []
    (vendor, query), = vendor_receiver.accepted
    assert vendor == "aliyun"
    assert (query["PhoneNumbers"], query["SignName"], query["TemplateCode"]) == ("13900001111", "管家",
                                                                                 "SMS_154950909")
    title = orjson.loads(query["TemplateParam"])["title"]
    assert title.startswith("[P0]")
    assert len(title) <= 35
    cur = await conn.execute("SELECT state, attempts FROM notifications WHERE channel = 'sms'")
    assert await cur.fetchone() == ("sent", 1)


async def test_bad_secret_fails_at_once_throttle_retries(conn: psycopg.AsyncConnection[Any], wo_db: str,
                                                         clock: ManualClock, policy: Policy,
                                                         vendor_receiver: VendorReceiver) -> None:
    vendor_receiver.aliyun[KEY_ID] = KEY_SECRET
    vendor_receiver.throttle = ["aliyun"]
    lead = await add_butler(conn, "组长", role="team_lead", phone="13900001111")
    await add_butler(conn, "周师傅", manager_id=lead)
    await apply_event(conn, policy, trapped(clock), clock.now())
    clock.advance(timedelta(seconds=61))
    await escalate_due(conn, policy, clock.now())
    good = NotificationSender(policy, clock=clock, sms=config(vendor_receiver), retry=RetryPolicy(3))
    assert await good.run_once(factory(wo_db)) == 1
    cur = await conn.execute("SELECT state, last_error FROM notifications WHERE channel = 'sms'")
    assert await cur.fetchone() == ("retrying", "aliyun sms isv.BUSINESS_LIMIT_CONTROL: 触发分钟级流控Permits:1")
    clock.advance(timedelta(seconds=6))
    bad = NotificationSender(policy, clock=clock, sms=config(vendor_receiver, "wrong-secret"), retry=RetryPolicy(3))
    assert await bad.run_once(factory(wo_db)) == 1
    assert vendor_receiver.refused == [("aliyun", "sign")]
    cur = await conn.execute("SELECT state, attempts, last_error FROM notifications WHERE channel = 'sms'")
    assert await cur.fetchone() == ("failed", 2, "aliyun sms SignatureDoesNotMatch: Specified signature is not matched")


async def test_unconfigured_sms_says_why(conn: psycopg.AsyncConnection[Any], wo_db: str, clock: ManualClock,
                                         policy: Policy) -> None:
    lead = await add_butler(conn, "组长", role="team_lead", phone="13900001111")
    await add_butler(conn, "周师傅", manager_id=lead)
    await apply_event(conn, policy, trapped(clock), clock.now())
    clock.advance(timedelta(seconds=61))
    await escalate_due(conn, policy, clock.now())
    sender = NotificationSender(policy, clock=clock)
    assert await sender.run_once(factory(wo_db)) == 1
    cur = await conn.execute("SELECT state, last_error FROM notifications WHERE channel = 'sms'")
    assert await cur.fetchone() == ("retrying", "no SMS provider configured (GUANJIA_SMS_URL)")
