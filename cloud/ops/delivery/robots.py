"""Group robots of WeCom (企业微信), DingTalk (钉钉) and Feishu (飞书), sent by us over httpx.

Why not apprise for these three (it is still used for every other messenger): apprise hard-codes
the vendor hosts, so neither a test nor a property company's egress proxy can point it elsewhere;
its Feishu plugin cannot sign (a Feishu robot with 签名校验 on refuses every message); and it
reports only "failed", while the vendors answer HTTP 200 with an error code in the body that
tells a bad key (give up, raise the alarm now) from a rate limit (retry). Each protocol is one
POST of JSON, small enough to own; the request formats and signatures follow the vendors' robot
documentation:

* WeCom:    ``POST {base}/cgi-bin/webhook/send?key=K`` ``{"msgtype": "text", "text": {"content": …}}``;
  no signature (the key is the secret); answer ``{"errcode": 0, "errmsg": "ok"}``.
* DingTalk: ``POST {base}/robot/send?access_token=T&timestamp=MS&sign=S`` with the same body shape;
  ``S = urlencode(base64(HMAC-SHA256(key=secret, msg=f"{MS}\\n{secret}")))``, MS in milliseconds,
  accepted within an hour; answer ``{"errcode": 0, "errmsg": "ok"}``.
* Feishu:   ``POST {base}/open-apis/bot/v2/hook/H`` ``{"timestamp": "S", "sign": …, "msg_type": "text",
  "content": {"text": …}}``; ``sign = base64(HMAC-SHA256(key=f"{S}\\n{secret}", msg=b""))`` — the
  string is the *key* and the message is empty, unlike DingTalk — S in seconds; answer
  ``{"code": 0, "msg": "success"}`` (older deployments: ``{"StatusCode": 0}``).

Timestamps come from the sender's injected clock, so tests pin them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from urllib.parse import quote

import httpx
import orjson

from cloud.ops.delivery.webhook import Outcome
from cloud.ops.notify.channels import DINGTALK_HOST, FEISHU_HOST, WECOM_HOST, RobotChannel

# vendor error codes that retrying will fix (rate limits, vendor busy); every other non-zero code
# is a configuration problem (bad key, bad signature, keyword or IP rule) and fails at once
_RETRY_CODES: Final = {
    "wecom": {-1, 45009, 45033},        # system busy, API freq out of limit, concurrency limit
    "dingtalk": {-1, 130101, 130102},   # system busy, send too fast, too many per minute
    "feishu": {9499, 11232, 11233},     # too many requests, frequency limited
}
WECOM_MAX_BYTES: Final = 2048  # WeCom refuses a text over 2048 bytes (UTF-8)


@dataclass(frozen=True, slots=True)
class RobotEndpoints:
    """Where the robots' APIs are; the vendors' by default. Tests point these at local receivers;
    a site behind an egress proxy points them at the proxy."""

    wecom: str = f"https://{WECOM_HOST}"
    dingtalk: str = f"https://{DINGTALK_HOST}"
    feishu: str = f"https://{FEISHU_HOST}"


def dingtalk_sign(secret: str, timestamp_ms: int) -> str:
    """DingTalk 加签, already URL-encoded for the query string."""
    mac = hmac.new(secret.encode(), f"{timestamp_ms}\n{secret}".encode(), hashlib.sha256).digest()
    return quote(base64.b64encode(mac).decode(), safe="")


def feishu_sign(secret: str, timestamp_s: int) -> str:
    """Feishu 签名校验: the timestamp-and-secret string is the HMAC key, the message is empty."""
    mac = hmac.new(f"{timestamp_s}\n{secret}".encode(), b"", hashlib.sha256).digest()
    return base64.b64encode(mac).decode()


def _truncate_utf8(text: str, limit: int) -> str:
    data = text.encode()
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode(errors="ignore") + "…"


def request_for(channel: RobotChannel, endpoints: RobotEndpoints, text: str, now: datetime, *,
                title: str = "", markdown: bool = False) -> tuple[str, bytes]:
    """The URL and JSON body of one robot message sent at ``now``; with ``markdown`` the vendor's
    markdown message (WeCom ``markdown``, DingTalk ``markdown`` with a title, Feishu an interactive
    card with one ``markdown`` element), otherwise plain text."""
    if channel.kind == "wecom":
        content = _truncate_utf8(text, WECOM_MAX_BYTES)
        body: dict[str, Any] = ({"msgtype": "markdown", "markdown": {"content": content}} if markdown
                                else {"msgtype": "text", "text": {"content": content}})
        return f"{endpoints.wecom}/cgi-bin/webhook/send?key={quote(channel.token)}", orjson.dumps(body)
    if channel.kind == "dingtalk":
        url = f"{endpoints.dingtalk}/robot/send?access_token={quote(channel.token)}"
        if channel.secret:
            ms = int(now.timestamp() * 1000)
            url += f"&timestamp={ms}&sign={dingtalk_sign(channel.secret, ms)}"
        body = ({"msgtype": "markdown", "markdown": {"title": title or text[:64], "text": text}} if markdown
                else {"msgtype": "text", "text": {"content": text}})
        return url, orjson.dumps(body)
    body = ({"msg_type": "interactive", "card": {
                "header": {"title": {"tag": "plain_text", "content": title or text[:64]}},
                "elements": [{"tag": "markdown", "content": text}]}} if markdown
            else {"msg_type": "text", "content": {"text": text}})
    if channel.secret:
        seconds = int(now.timestamp())
        body = {"timestamp": str(seconds), "sign": feishu_sign(channel.secret, seconds), **body}
    return f"{endpoints.feishu}/open-apis/bot/v2/hook/{quote(channel.token)}", orjson.dumps(body)


def _vendor_code(kind: str, payload: Any) -> tuple[int, str]:
    if not isinstance(payload, dict):
        return -2, "the answer is not a JSON object"
    if kind == "feishu":
        code = payload.get("code", payload.get("StatusCode", -2))
        message = payload.get("msg", payload.get("StatusMessage", ""))
    else:
        code, message = payload.get("errcode", -2), payload.get("errmsg", "")
    return (code if isinstance(code, int) else -2), str(message)


async def send_robot(client: httpx.AsyncClient, channel: RobotChannel, endpoints: RobotEndpoints,
                     title: str, body: str, now: datetime, timeout: float = 10.0, *,
                     markdown: bool = False) -> Outcome:
    """One attempt. The vendors answer 200 with an error code in the body, so the body decides."""
    text = body if markdown or body.startswith(title) else f"{title}\n{body}"
    url, content = request_for(channel, endpoints, text, now, title=title, markdown=markdown)
    try:
        response = await client.post(url, content=content, timeout=timeout,
                                     headers={"Content-Type": "application/json; charset=utf-8"})
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{channel.kind}: {type(exc).__name__}: {exc}"[:500])
    if response.status_code >= 500 or response.status_code in (408, 429):
        return Outcome(False, response.status_code, f"{channel.kind}: HTTP {response.status_code}")
    try:
        code, message = _vendor_code(channel.kind, orjson.loads(response.content))
    except orjson.JSONDecodeError:
        code, message = -2, f"HTTP {response.status_code}, not JSON"
    if code == 0 and response.status_code < 300:
        return Outcome(True, response.status_code, None)
    permanent = code not in _RETRY_CODES[channel.kind] and code != -2
    return Outcome(False, response.status_code, f"{channel.kind} error {code}: {message}"[:500], permanent)
