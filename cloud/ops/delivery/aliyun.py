"""Aliyun's RPC-style OpenAPI, shared by the SMS (``SendSms``) and voice (``SingleCallByTts``) adapters.

Why our own ~50 lines instead of the Aliyun SDK: the SDK pulls a large dependency tree (tea,
credentials, OpenAPI core) into the wheel for one GET per product. Both products speak the same
RPC style: all parameters in the query, signed with signature version 1.0 (HMAC-SHA1) as Aliyun's
"signature mechanism" documents it:

1. canonical query = parameters (without ``Signature``) sorted by name, names and values
   percent-encoded per RFC 3986 (``A-Za-z0-9-_.~`` kept, space as ``%20``), joined ``k=v&…``;
2. ``StringToSign = "GET&%2F&" + percent_encode(canonical query)``;
3. ``Signature = base64(HMAC-SHA1(key=AccessKeySecret + "&", StringToSign))``.

The answer is JSON ``{"Code": "OK", …}`` or an error code; rate limits and server errors are
retried, everything else (bad signature, bad number, template not approved) fails at once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx
import orjson

from cloud.ops.delivery.errors import DeliveryConfigError
from cloud.ops.delivery.webhook import Outcome

RETRY_CODES: Final = {"isv.BUSINESS_LIMIT_CONTROL", "Throttling.User", "Throttling", "ServiceUnavailable",
                      "InternalError"}


@dataclass(frozen=True, slots=True)
class RpcUrl:
    """What an ``aliyun…://KEY_ID:KEY_SECRET@host?…`` configuration URL says."""

    key_id: str
    secret: str
    endpoint: str
    region: str
    query: dict[str, str]


def parse_rpc_url(url: str, what: str, scheme: str, default_host: str, required: tuple[str, ...],
                  example: str) -> RpcUrl:
    """``scheme://`` (HTTPS) or ``scheme+http://`` (plain HTTP: a local receiver, a private gateway);
    :class:`DeliveryConfigError` naming everything that is missing."""
    parts = urlsplit(url)
    transport = {scheme: "https", f"{scheme}+http": "http"}.get(parts.scheme)
    if transport is None:
        raise DeliveryConfigError(f"{what} URL must be {scheme}://KEY_ID:KEY_SECRET@{default_host}?{example}, "
                                  f"got scheme {parts.scheme!r}")
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    missing = [name for name, value in (("access key id (user)", parts.username),
                                        ("access key secret (password)", parts.password),
                                        *((name, query.get(name)) for name in required)) if not value]
    if missing:
        raise DeliveryConfigError(f"{what} URL lacks {', '.join(missing)}")
    host = parts.netloc.rpartition("@")[2] or default_host
    return RpcUrl(unquote(parts.username or ""), unquote(parts.password or ""), f"{transport}://{host}/",
                  query.get("region", "cn-hangzhou"), query)


def percent_encode(value: str) -> str:
    """RFC 3986 encoding as Aliyun's signature wants it (``~`` kept, space → ``%20``)."""
    return quote(value, safe="-_.~")


def sign(secret: str, params: dict[str, str]) -> str:
    canonical = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items()))
    to_sign = "GET&%2F&" + percent_encode(canonical)
    return base64.b64encode(hmac.new(f"{secret}&".encode(), to_sign.encode(), hashlib.sha1).digest()).decode()


def signed_params(action: str, key_id: str, secret: str, region: str, now: datetime, nonce: str,
                  **own: str) -> dict[str, str]:
    """The common RPC parameters (version 2017-05-25, as both SMS and voice use) plus the action's
    own, with ``Signature`` added."""
    params = {"AccessKeyId": key_id, "Action": action, "Format": "JSON", "RegionId": region,
              "SignatureMethod": "HMAC-SHA1", "SignatureNonce": nonce, "SignatureVersion": "1.0",
              "Timestamp": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "Version": "2017-05-25", **own}
    params["Signature"] = sign(secret, params)
    return params


async def rpc_get(client: httpx.AsyncClient, endpoint: str, params: dict[str, str], timeout: float,
                  what: str) -> Outcome:
    """One signed GET; the vendor's answer as an :class:`Outcome` (``what`` names it in errors)."""
    try:
        response = await client.get(endpoint, params=params, timeout=timeout)
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{what}: {type(exc).__name__}: {exc}"[:500])
    try:
        answer = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        answer = {}
    code = str(answer.get("Code", "")) if isinstance(answer, dict) else ""
    if code == "OK" and response.status_code < 300:
        return Outcome(True, response.status_code, None)
    message = str(answer.get("Message", "")) if isinstance(answer, dict) else ""
    retry = code in RETRY_CODES or not code or response.status_code >= 500
    return Outcome(False, response.status_code, f"{what} {code or response.status_code}: {message}"[:500],
                   permanent=not retry)
