"""Voice calls through the Aliyun adapter (``SingleCallByTts``): an unaccepted P0 escalates by SMS
and, a minute later, by a phone call to the same person; the call is skipped when the order was
accepted meanwhile or no provider is configured. The local Aliyun stand-in checks the RPC
signature and the voice parameters independently of our signing code."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

import orjson
import psycopg
import pytest

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.delivery.errors import DeliveryConfigError
from cloud.ops.delivery.sender import NotificationSender
from cloud.ops.delivery.voice import VoiceConfig
from cloud.ops.escalation import escalate_due
from cloud.ops.model.actors import Actor
from cloud.ops.model.policy import Policy
from cloud.ops.notify.outbox import VOICE_AFTER
from cloud.ops.workorders import repo as wo_repo
from guanjia.core.clock import ManualClock
from tests.cloud.ops.delivery.test_notify import factory
from tests.cloud.ops.delivery.test_sms import KEY_ID, KEY_SECRET, trapped
from tests.cloud.ops.delivery.test_sms import config as sms_config
from tests.support.vendors import VendorReceiver
from tests.support.workorders import add_butler


def config(receiver: VendorReceiver, secret: str = KEY_SECRET) -> VoiceConfig:
    return VoiceConfig.parse(f"aliyunvoice+http://{KEY_ID}:{quote(secret, safe='')}@127.0.0.1:{receiver.port}"
                             "?show_number=057188880000&template=TTS_10001")


def test_config_parse_and_errors() -> None:
    parsed = VoiceConfig.parse(f"aliyunvoice://{KEY_ID}:s3cret@dyvmsapi.aliyuncs.com?show_number=1&template=TTS_1")
    assert (parsed.endpoint, parsed.show_number, parsed.template) == ("https://dyvmsapi.aliyuncs.com/", "1", "TTS_1")
    assert "s3cret" not in repr(parsed)
    with pytest.raises(DeliveryConfigError, match="Voice URL must be aliyunvoice://"):
        VoiceConfig.parse("aliyunsms://a:b@host?show_number=1&template=T")
    with pytest.raises(DeliveryConfigError, match="Voice URL lacks show_number, template"):
        VoiceConfig.parse(f"aliyunvoice://{KEY_ID}:s@dyvmsapi.aliyuncs.com")


async def _escalated_p0(conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy) -> tuple[int, int]:
    lead = await add_butler(conn, "组长", role="team_lead", phone="+86 139-0000-1111")
    butler = await add_butler(conn, "周师傅", manager_id=lead, phone="13700002222")
    result = await apply_event(conn, policy, trapped(clock), clock.now())
    assert result.work_order_id is not None
    clock.advance(timedelta(seconds=61))
    assert await escalate_due(conn, policy, clock.now()) == 1
    return result.work_order_id, butler


async def test_unaccepted_p0_calls_after_the_sms(conn: psycopg.AsyncConnection[Any], wo_db: str, clock: ManualClock,
                                                 policy: Policy, vendor_receiver: VendorReceiver) -> None:
    vendor_receiver.aliyun[KEY_ID] = KEY_SECRET
    await _escalated_p0(conn, clock, policy)
    sender = NotificationSender(policy, clock=clock, sms=sms_config(vendor_receiver), voice=config(vendor_receiver))
    await sender.run_once(factory(wo_db))
    assert [v for v, _ in vendor_receiver.accepted] == ["aliyun"]  # the text first; the call is not due yet
    clock.advance(VOICE_AFTER)
    assert await sender.run_once(factory(wo_db)) == 1
    assert vendor_receiver.refused == []
    (_, call), = [a for a in vendor_receiver.accepted if a[0] == "aliyun-voice"]
    assert (call["CalledNumber"], call["CalledShowNumber"], call["TtsCode"], call["PlayTimes"]) == (
        "13900001111", "057188880000", "TTS_10001", "3")
    assert orjson.loads(call["TtsParam"])["title"].startswith("[P0]")
    cur = await conn.execute("SELECT state, attempts, target FROM notifications WHERE channel = 'voice'")
    assert await cur.fetchall() == [("sent", 1, "+86 139-0000-1111")]


async def test_call_skipped_once_accepted(conn: psycopg.AsyncConnection[Any], wo_db: str, clock: ManualClock,
                                          policy: Policy, vendor_receiver: VendorReceiver) -> None:
    vendor_receiver.aliyun[KEY_ID] = KEY_SECRET
    wo_id, butler = await _escalated_p0(conn, clock, policy)
    await wo_repo.transition(conn, policy, wo_id, "accept", Actor.butler(butler), clock.now())
    clock.advance(VOICE_AFTER)
    sender = NotificationSender(policy, clock=clock, sms=sms_config(vendor_receiver), voice=config(vendor_receiver))
    await sender.run_once(factory(wo_db))
    assert [v for v, _ in vendor_receiver.accepted] == ["aliyun"]
    cur = await conn.execute("SELECT state, last_error FROM notifications WHERE channel = 'voice'")
    assert await cur.fetchone() == ("skipped", "skipped: the order is accepted")
    cur = await conn.execute("SELECT count(*) FROM alarms WHERE rule = 'notification_failed'")
    assert await cur.fetchone() == (0,)


async def test_bad_signature_fails_unconfigured_skips(conn: psycopg.AsyncConnection[Any], wo_db: str,
                                                      clock: ManualClock, policy: Policy,
                                                      vendor_receiver: VendorReceiver) -> None:
    vendor_receiver.aliyun[KEY_ID] = KEY_SECRET
    await _escalated_p0(conn, clock, policy)
    clock.advance(VOICE_AFTER)
    bad = NotificationSender(policy, clock=clock, voice=config(vendor_receiver, "wrong-secret"))
    await bad.run_once(factory(wo_db))
    assert ("aliyun", "sign") in vendor_receiver.refused
    cur = await conn.execute("SELECT state, last_error FROM notifications WHERE channel = 'voice'")
    assert await cur.fetchone() == ("failed", "aliyun voice SignatureDoesNotMatch: Specified signature is not matched")
    lead = (await (await conn.execute("SELECT id FROM butlers WHERE name = '组长'")).fetchone() or [0])[0]
    await conn.execute("UPDATE notifications SET state = 'pending', next_attempt_at = %s WHERE channel = 'voice'",
                       (clock.now(),))
    await NotificationSender(policy, clock=clock).run_once(factory(wo_db))
    cur = await conn.execute("SELECT state, last_error, butler_id FROM notifications WHERE channel = 'voice'")
    assert await cur.fetchone() == ("skipped", "skipped: no voice provider configured (GUANJIA_VOICE_URL)", lead)
