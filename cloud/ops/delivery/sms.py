"""SMS through a provider adapter; the one provider today is Aliyun SMS (阿里云短信, ``SendSms``).

Configured by one URL, ``GUANJIA_SMS_URL``::

    aliyunsms://<AccessKeyId>:<AccessKeySecret>@dysmsapi.aliyuncs.com?sign_name=管家&template=SMS_123456
    aliyunsms+http://…@127.0.0.1:8080?…        plain HTTP (a local receiver in tests, a private gateway)

Why our own ~60 lines instead of the Aliyun SDK: the SDK pulls a large dependency tree (tea,
credentials, OpenAPI core) into the wheel for one GET. The request is Aliyun's RPC style: all
parameters in the query, signed with signature version 1.0 (HMAC-SHA1) as Aliyun's "signature
mechanism" documents it:

1. canonical query = parameters (without ``Signature``) sorted by name, names and values
   percent-encoded per RFC 3986 (``A-Za-z0-9-_.~`` kept, space as ``%20``), joined ``k=v&…``;
2. ``StringToSign = "GET&%2F&" + percent_encode(canonical query)``;
3. ``Signature = base64(HMAC-SHA1(key=AccessKeySecret + "&", StringToSign))``.

The message goes through an SMS *template* approved in the Aliyun console (operators in China
refuse free text); we fill its ``${title}`` variable with the notification subject (cut to the 35
characters a template variable may hold), e.g. a template ``您有新的工单：${title}，请及时处理。``.
The answer is JSON: ``{"Code": "OK", …}`` or an error code; rate limits are retried, everything
else (bad signature, bad number, template not approved) fails at once and raises the alarm.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx
import orjson

from cloud.ops.delivery.errors import DeliveryConfigError
from cloud.ops.delivery.webhook import Outcome
from cloud.ops.notify.preferences import normalise_phone

DEFAULT_HOST: Final = "dysmsapi.aliyuncs.com"
TITLE_MAX: Final = 35
_RETRY_CODES: Final = {"isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "Throttling", "ServiceUnavailable",
                       "InternalError"}


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
        parts = urlsplit(url)
        scheme = {"aliyunsms": "https", "aliyunsms+http": "http"}.get(parts.scheme)
        if scheme is None:
            raise DeliveryConfigError(
                f"SMS URL must be aliyunsms://KEY_ID:KEY_SECRET@{DEFAULT_HOST}?sign_name=…&template=SMS_…, "
                f"got scheme {parts.scheme!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        missing = [name for name, value in (("access key id (user)", parts.username),
                                            ("access key secret (password)", parts.password),
                                            ("sign_name", query.get("sign_name")),
                                            ("template", query.get("template"))) if not value]
        if missing:
            raise DeliveryConfigError(f"SMS URL lacks {', '.join(missing)}")
        host = parts.netloc.rpartition("@")[2] or DEFAULT_HOST
        return cls(unquote(parts.username or ""), unquote(parts.password or ""), query["sign_name"],
                   query["template"], f"{scheme}://{host}/", query.get("region", "cn-hangzhou"))


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun's signature wants it (``~`` kept, space → ``%20``)."""
    return quote(value, safe="-_.~")


def sign(secret: str, params: dict[str, str]) -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    to_sign = "GET&%2F&" + percent_encode(canonical)
    return base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


def request_params(config: SmsConfig, phone: str, title: str, now: datetime, nonce: str) -> dict[str, str]:
    params = {
        "AccessKeyId": config.access_key_id, "Action": "SendSms", "Format": "JSON", "PhoneNumbers": phone,
        "RegionId": config.region, "SignName": config.sign_name, "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": nonce, "SignatureVersion": "1.0", "TemplateCode": config.template,
        "TemplateParam": orjson.dumps({"title": title[:TITLE_MAX]}).decode(),
        "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": "2017-05-25",
    }
    params["Signature"] = sign(config.access_key_secret, params)
    return params


async def send_sms(client: httpx.AsyncClient, config: SmsConfig, phone: str, title: str, now: datetime) -> Outcome:
    """One ``SendSms`` attempt to ``phone`` at ``now`` (the sender's clock)."""
    number = normalise_phone(phone)
    if number is None:
        return Outcome(False, None, f"not a mainland mobile number: {phone[:3]}…", permanent=True)
    params = request_params(config, number, title, now, uuid.uuid4().hex)
    try:
        response = await client.get(config.endpoint, params=params, timeout=config.timeout)
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"aliyun sms: {type(exc).__name__}: {exc}"[:500])
    try:
        answer = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        answer = {}
    code = str(answer.get("Code", "")) if isinstance(answer, dict) else ""
    if code == "OK" and response.status_code < 300:
        return Outcome(True, response.status_code, None)
    message = str(answer.get("Message", "")) if isinstance(answer, dict) else ""
    retry = code in _RETRY_CODES or not code or response.status_code >= 500
    return Outcome(False, response.status_code, f"aliyun sms {code or response.status_code}: {message}"[:500],
                   permanent=not retry)
