"""A local stand-in for the Chinese notification vendors: WeCom, DingTalk and Feishu group robots
and Aliyun SMS. It checks each request the way the vendor documents it and answers the way the
vendor does (HTTP 200 with an error code in the body for the robots; JSON ``Code`` for Aliyun).

The checks are written from the vendors' documentation, *not* by calling the product's signing
functions, so a wrong product signature fails here:

* WeCom robot: ``POST /cgi-bin/webhook/send?key=K``, JSON ``{"msgtype": "text", "text": {"content"}}``,
  content ≤ 2048 bytes, or ``{"msgtype": "markdown", "markdown": {"content"}}`` ≤ 4096 bytes;
  unknown key → ``errcode 93000``.
* Markdown elsewhere: DingTalk ``{"msgtype": "markdown", "markdown": {"title", "text"}}`` (both
  required); Feishu ``{"msg_type": "interactive", "card": {"elements": [{"tag": "markdown", …}]}}``.
* DingTalk robot: ``POST /robot/send?access_token=T&timestamp=MS&sign=S``; S (URL-decoded) must be
  ``base64(HmacSHA256(secret, MS + "\\n" + secret))``, MS within an hour → else ``errcode 310000``.
* Feishu bot: ``POST /open-apis/bot/v2/hook/H`` with ``timestamp`` (seconds, string) and ``sign``
  in the JSON body; ``sign == base64(HmacSHA256(key=timestamp + "\\n" + secret, msg=""))`` → else
  ``code 19021``.
* Aliyun SMS: ``GET /?Action=SendSms&…&Signature=…``; the string to sign is rebuilt with the
  documented recipe (form-encode, then ``+``→``%20``, ``*``→``%2A``, ``%7E``→``~``), signed with
  HMAC-SHA1 under ``secret + "&"``; bad → HTTP 400 ``SignatureDoesNotMatch``.
* Aliyun voice (Dyvmsapi): ``GET /?Action=SingleCallByTts&…`` with ``CalledNumber``,
  ``CalledShowNumber``, ``TtsCode``, ``TtsParam`` (JSON), the same common parameters and signature as
  SMS; answers ``{"Code": "OK", "CallId": …}``.

The fixture that runs it: ``vendor_receiver`` in ``tests/plugins/receivers.py``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, quote_plus, unquote, urlsplit


def _aliyun_encode(value: str) -> str:
    return quote_plus(value, safe="").replace("+", "%20").replace("*", "%2A").replace("%7E", "~")


@dataclass
class VendorReceiver:
    port: int
    now: Callable[[], float]
    """The vendor's clock (unix seconds): the test's pinned clock."""
    wecom_keys: set[str] = field(default_factory=set)
    dingtalk: dict[str, str] = field(default_factory=dict)  # access_token → secret
    feishu: dict[str, str] = field(default_factory=dict)    # hook id → secret
    aliyun: dict[str, str] = field(default_factory=dict)    # AccessKeyId → AccessKeySecret
    throttle: list[str] = field(default_factory=list)       # vendors that answer "too fast" once each
    accepted: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _throttled(self, vendor: str) -> bool:
        if vendor in self.throttle:
            self.throttle.remove(vendor)
            return True
        return False

    def handle(self, method: str, target: str, body: bytes) -> tuple[int, dict[str, Any]]:
        parts = urlsplit(target)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        if method == "POST" and parts.path == "/cgi-bin/webhook/send":
            return 200, self._wecom(query, body)
        if method == "POST" and parts.path == "/robot/send":
            return 200, self._dingtalk(parts.query, query, body)
        if method == "POST" and parts.path.startswith("/open-apis/bot/v2/hook/"):
            return 200, self._feishu(parts.path.rsplit("/", 1)[1], body)
        if method == "GET" and parts.path == "/":
            return self._aliyun(query)
        return 404, {"error": "no such API"}

    def _refuse(self, vendor: str, why: str, answer: dict[str, Any]) -> dict[str, Any]:
        self.refused.append((vendor, why))
        return answer

    @staticmethod
    def text_of(vendor: str, data: dict[str, Any]) -> str:
        """The words of an accepted robot message, whichever documented shape carried them."""
        if vendor == "feishu":
            if data.get("msg_type") == "interactive":
                return "\n".join(str(e.get("content", "")) for e in data["card"]["elements"])
            return str(data["content"]["text"])
        if data.get("msgtype") == "markdown":
            return str(data["markdown"].get("content") or data["markdown"].get("text"))
        return str(data["text"]["content"])

    def _text_body(self, vendor: str, body: bytes) -> dict[str, Any] | None:
        try:
            data = json.loads(body)
        except ValueError:
            return None
        return data if isinstance(data, dict) else None

    def _wecom(self, query: dict[str, str], body: bytes) -> dict[str, Any]:
        if query.get("key") not in self.wecom_keys:
            return self._refuse("wecom", "key", {"errcode": 93000, "errmsg": "invalid webhook url"})
        data = self._text_body("wecom", body)
        kind = (data or {}).get("msgtype")
        content = (data or {}).get(kind, {}).get("content") if data and kind in ("text", "markdown") else None
        if not data or not isinstance(content, str) or not content:
            return self._refuse("wecom", "format", {"errcode": 40008, "errmsg": "invalid message type"})
        if len(content.encode()) > (2048 if kind == "text" else 4096):
            return self._refuse("wecom", "length", {"errcode": 40058, "errmsg": "content exceed max length"})
        if self._throttled("wecom"):
            return {"errcode": 45009, "errmsg": "api freq out of limit"}
        self.accepted.append(("wecom", data))
        return {"errcode": 0, "errmsg": "ok"}

    def _dingtalk(self, raw_query: str, query: dict[str, str], body: bytes) -> dict[str, Any]:
        secret = self.dingtalk.get(query.get("access_token", ""))
        if secret is None:
            return self._refuse("dingtalk", "token", {"errcode": 300001, "errmsg": "token is not exist"})
        timestamp, sign = query.get("timestamp", ""), query.get("sign", "")
        # the sign travels URL-encoded; a '+' in base64 must arrive as %2B, never as a space
        raw_sign = dict(p.split("=", 1) for p in raw_query.split("&") if "=" in p).get("sign", "")
        expected = base64.b64encode(hmac.new(secret.encode(), f"{timestamp}\n{secret}".encode(),
                                             hashlib.sha256).digest()).decode()
        fresh = timestamp.isdigit() and abs(int(timestamp) / 1000 - self.now()) <= 3600
        if not fresh or unquote(raw_sign) != expected or sign != expected:
            return self._refuse("dingtalk", "sign", {"errcode": 310000, "errmsg": "sign not match"})
        data = self._text_body("dingtalk", body)
        if not data:
            return self._refuse("dingtalk", "format", {"errcode": 40035, "errmsg": "缺少参数 json"})
        markdown = data.get("markdown", {}) if data.get("msgtype") == "markdown" else None
        if markdown is not None and (not markdown.get("title") or not markdown.get("text")):
            return self._refuse("dingtalk", "format", {"errcode": 40035, "errmsg": "缺少参数 markdown"})
        plain = data.get("msgtype") == "text" and data.get("text", {}).get("content")
        if markdown is None and not plain:
            return self._refuse("dingtalk", "format", {"errcode": 40035, "errmsg": "缺少参数 json"})
        if self._throttled("dingtalk"):
            return {"errcode": 130101, "errmsg": "send too fast, exceed 20 times per minute"}
        self.accepted.append(("dingtalk", data))
        return {"errcode": 0, "errmsg": "ok"}

    def _feishu(self, hook: str, body: bytes) -> dict[str, Any]:
        secret = self.feishu.get(hook)
        if secret is None:
            return self._refuse("feishu", "hook", {
                "code": 19001, "msg": "param invalid: incoming webhook access token invalid"})
        data = self._text_body("feishu", body)
        if data is None:
            return self._refuse("feishu", "format", {"code": 9499, "msg": "Bad Request"})
        timestamp = data.get("timestamp")
        if secret:
            expected = base64.b64encode(hmac.new(f"{timestamp}\n{secret}".encode(), digestmod=hashlib.sha256)
                                        .digest()).decode()
            fresh = isinstance(timestamp, str) and timestamp.isdigit() and abs(int(timestamp) - self.now()) <= 3600
            if not fresh or data.get("sign") != expected:
                return self._refuse("feishu", "sign", {
                    "code": 19021, "msg": "sign match fail or timestamp is not within one hour from current time"})
        card = data.get("card", {}) if data.get("msg_type") == "interactive" else None
        if card is not None and not any(isinstance(e, dict) and e.get("tag") == "markdown" and e.get("content")
                                        for e in card.get("elements", [])):
            return self._refuse("feishu", "format", {"code": 11246, "msg": "card content is empty"})
        if card is None and (data.get("msg_type") != "text" or not data.get("content", {}).get("text")):
            return self._refuse("feishu", "format", {"code": 19002, "msg": "params error, msg_type need"})
        if self._throttled("feishu"):
            return {"code": 11232, "msg": "frequency limited"}
        self.accepted.append(("feishu", data))
        return {"code": 0, "msg": "success", "data": {}}

    def _aliyun(self, query: dict[str, str]) -> tuple[int, dict[str, Any]]:
        common = ("AccessKeyId", "Action", "Format", "SignatureMethod", "SignatureNonce", "SignatureVersion",
                  "Timestamp", "Version", "Signature")
        own = {"SendSms": ("PhoneNumbers", "SignName", "TemplateCode"),
               "SingleCallByTts": ("CalledNumber", "CalledShowNumber", "TtsCode")}.get(query.get("Action", ""), ())
        required = (*common, *own)
        missing = [k for k in required if not query.get(k)]
        if missing:
            self.refused.append(("aliyun", f"missing {missing}"))
            return 400, {"Code": "MissingParameter", "Message": f"missing {missing[0]}"}
        secret = self.aliyun.get(query["AccessKeyId"])
        if secret is None:
            self.refused.append(("aliyun", "key"))
            return 404, {"Code": "InvalidAccessKeyId.NotFound", "Message": "Specified access key is not found."}
        if not own or (query["Version"], query["SignatureMethod"], query["SignatureVersion"]) != (
                "2017-05-25", "HMAC-SHA1", "1.0"):
            self.refused.append(("aliyun", "common parameters"))
            return 400, {"Code": "InvalidParameter", "Message": "common parameters"}
        params = {k: v for k, v in query.items() if k != "Signature"}
        canonical = "&".join(f"{_aliyun_encode(k)}={_aliyun_encode(v)}" for k, v in sorted(params.items()))
        to_sign = f"GET&{_aliyun_encode('/')}&{_aliyun_encode(canonical)}"
        expected = base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()
        if query["Signature"] != expected:
            self.refused.append(("aliyun", "sign"))
            return 400, {"Code": "SignatureDoesNotMatch", "Message": "Specified signature is not matched"}
        stamp = datetime.strptime(query["Timestamp"], "%Y-%m-%dT%H:%M:%S%z").timestamp()
        if abs(stamp - self.now()) > 900:
            self.refused.append(("aliyun", "timestamp"))
            return 400, {"Code": "InvalidTimeStamp.Expired", "Message": "Specified time stamp is expired"}
        if self._throttled("aliyun"):
            return 200, {"Code": "isv.BUSINESS_LIMIT_CONTROL", "Message": "触发分钟级流控Permits:1"}
        if query["Action"] == "SingleCallByTts":
            try:
                tts = json.loads(query.get("TtsParam", "{}"))
            except ValueError:
                tts = None
            if not isinstance(tts, dict):
                self.refused.append(("aliyun-voice", "TtsParam"))
                return 400, {"Code": "InvalidTtsParam", "Message": "TtsParam is not a JSON object"}
            self.accepted.append(("aliyun-voice", query))
            return 200, {"Code": "OK", "Message": "OK", "CallId": "116012354148^102813", "RequestId": "D9CB3933"}
        self.accepted.append(("aliyun", query))
        return 200, {"Code": "OK", "Message": "OK", "BizId": "900619746936498440^0", "RequestId": "F655A8D5"}
