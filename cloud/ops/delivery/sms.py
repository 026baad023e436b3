"""SMS through a provider adapter; the one provider today is Aliyun SMS (阿里云短信, ``SendSms``).

Configured by one URL, ``GUANJIA_SMS_URL``::

    aliyunsms://<AccessKeyId>:<AccessKeySecret>@dysmsapi.aliyuncs.com?sign_name=管家&template=SMS_123456
    aliyunsms+http://…@127.0.0.1:8080?…        plain HTTP (a local receiver in tests, a private gateway)

The request is Aliyun's RPC style, signed as :mod:`cloud.ops.delivery.aliyun` describes (shared
with the voice adapter, :mod:`cloud.ops.delivery.voice`).

The message goes through an SMS *template* approved in the Aliyun console (operators in China
refuse free text); we fill its ``${title}`` variable with the notification subject (cut to the 35
characters a template variable may hold), e.g. a template ``您有新的工单：${title}，请及时处理。``.
The answer is JSON: ``{"Code": "OK", …}`` or an error code; rate limits are retried, everything
else (bad signature, bad number, template not approved) fails at once and raises the alarm.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import httpx
import orjson

from cloud.ops.delivery.aliyun import parse_rpc_url, rpc_get, signed_params
from cloud.ops.delivery.webhook import Outcome
from cloud.ops.notify.preferences import normalise_phone

DEFAULT_HOST: Final = "dysmsapi.aliyuncs.com"
TITLE_MAX: Final = 35


@dataclass(frozen=True, slots=True)
class SmsConfig:
    access_key_id: str
    access_key_secret: str
    sign_name: str
    template: str
    endpoint: str = f"https://{DEFAULT_HOST}/"
    region: str = "cn-hangzhou"
    timeout: float = 10.0

    def __repr__(self) -> str:  # never show the secret in logs
        return f"SmsConfig(aliyun, {self.endpoint}, key={self.access_key_id}, template={self.template})"

    @classmethod
    def parse(cls, url: str) -> SmsConfig:
        found = parse_rpc_url(url, "SMS", "aliyunsms", DEFAULT_HOST, ("sign_name", "template"),
                              "sign_name=…&template=SMS_…")
        return cls(found.key_id, found.secret, found.query["sign_name"], found.query["template"], found.endpoint,
                   found.region)


def request_params(config: SmsConfig, phone: str, title: str, now: datetime, nonce: str) -> dict[str, str]:
    return signed_params("SendSms", config.access_key_id, config.access_key_secret, config.region, now, nonce,
                         PhoneNumbers=phone, SignName=config.sign_name, TemplateCode=config.template,
                         TemplateParam=orjson.dumps({"title": title[:TITLE_MAX]}).decode())


async def send_sms(client: httpx.AsyncClient, config: SmsConfig, phone: str, title: str, now: datetime) -> Outcome:
    """One ``SendSms`` attempt to ``phone`` at ``now`` (the sender's clock)."""
    number = normalise_phone(phone)
    if number is None:
        return Outcome(False, None, f"not a mainland mobile number: {phone[:3]}…", permanent=True)
    return await rpc_get(client, config.endpoint, request_params(config, number, title, now, uuid.uuid4().hex),
                         config.timeout, "aliyun sms")
