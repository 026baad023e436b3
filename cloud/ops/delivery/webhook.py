"""Signed webhooks.

Signature header (the scheme Stripe and GitHub receivers know)::

    X-Guanjia-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>

The timestamp is inside the MAC so a captured request cannot be replayed later: receivers reject
a ``t`` older than their tolerance (:func:`verify` defaults to 5 minutes). ``X-Guanjia-Delivery``
is the notification id — stable across retries — so receivers can drop duplicates.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Final

import httpx

SIGNATURE_HEADER: Final = "X-Guanjia-Signature"
DELIVERY_HEADER: Final = "X-Guanjia-Delivery"
EVENT_HEADER: Final = "X-Guanjia-Event"


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300.0) -> bool:
    """Check a signature header (for receivers and tests) at ``now`` (unix seconds, the receiver's
    clock); constant-time compare."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs(now - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass(frozen=True, slots=True)
class Outcome:
    ok: bool
    status: int | None
    error: str | None
    permanent: bool = False


async def post(client: httpx.AsyncClient, url: str, secret: str, body: bytes, event: str, delivery: int,
               now: datetime, timeout: float = 10.0) -> Outcome:
    """One delivery attempt, signed at ``now`` (the sender's clock). 2xx is success; 4xx other
    than 408/429 will not get better by retrying (permanent); everything else (5xx, timeouts,
    refused) is retried by the sender."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(secret, int(now.timestamp()), body),
        DELIVERY_HEADER: str(delivery),
        EVENT_HEADER: event,
        "User-Agent": "guanjia-webhooks/1",
    }
    try:
        response = await client.post(url, content=body, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return Outcome(False, None, f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= response.status_code < 300:
        return Outcome(True, response.status_code, None)
    permanent = 400 <= response.status_code < 500 and response.status_code not in (408, 429)
    return Outcome(False, response.status_code, f"HTTP {response.status_code}", permanent)
