"""The login decision, shared by the OAuth2 token endpoint and the web login form."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection

from cloud.auth.errors import AuthError
from cloud.auth.passwords import needs_rehash, verify_password_async
from cloud.auth.ratelimit import LoginLimiter
from cloud.auth.tokens import TokenService
from cloud.auth.users import User, get_login, record_login, rehash_password

log = logging.getLogger(__name__)


class LoginRejected(AuthError):
    """Wrong username or password, or a disabled account (one message for all: no oracle)."""


class LoginThrottled(AuthError):
    """Too many failed attempts; ``retry_after`` seconds to wait."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many login attempts, retry in {retry_after} s")


@dataclass(slots=True)
class AuthState:
    """What the auth layer keeps per application: the token service and the login limiter."""

    tokens: TokenService
    limiter: LoginLimiter
    secure_cookies: bool = True
    proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network] = ()


def _trusted(address: str, proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in proxies)


def client_address(peer: str | None, forwarded_for: str | None,
                   proxies: Sequence[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> str:
    """The client a login limit applies to.

    ``X-Forwarded-For`` is believed only when the TCP peer is one of the configured proxies
    (``GUANJIA_TRUSTED_PROXIES``); then the right-most address that is not itself a trusted proxy
    is the client. Anyone else can write any ``X-Forwarded-For`` they like: trusting it let one
    client rotate the header and escape the per-IP login limit (issue 14 §5)."""
    address = peer or "unknown"
    if not forwarded_for or not _trusted(address, proxies):
        return address
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return address  # garbage in the header: limit the proxy's own address
    return address


async def authenticate(conn: AsyncConnection[Any], limiter: LoginLimiter, username: str, password: str,
                       client_ip: str) -> User:
    """Check a login attempt; raise LoginThrottled before doing any work when over the limit."""
    if (wait := limiter.check(username, client_ip)) > 0:
        log.warning("login throttled for %r from %s (%d s)", username, client_ip, wait)
        raise LoginThrottled(wait)
    found = await get_login(conn, username)
    ok = await verify_password_async(found[1] if found else None, password)
    if not ok or found is None or found[0].disabled:
        limiter.failed(username, client_ip)
        log.info("login failed for %r from %s", username, client_ip)
        raise LoginRejected("wrong username or password")
    user, encoded = found
    limiter.succeeded(username, client_ip)
    if needs_rehash(encoded):
        await rehash_password(conn, user.id, password)
    await record_login(conn, user.id)
    return user
