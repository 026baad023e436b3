"""Gateway enrolment with a one-time bootstrap token; rotation and revocation of its credentials.

A new gateway needs nothing but a token: an admin issues one for a registered gateway
(:func:`issue_token`, shown once), the agent sends it to ``POST /api/v1/enroll``
(``guanjia edge enroll``) and gets back its identity (community, gateway), the broker address and a
broker account of its own — generated now, confined by the ACL to the gateway's topic prefix
(:meth:`cloud.registry.broker.BrokerAccount.gateway`). The token is then spent.

* **Single use** is one conditional ``UPDATE … WHERE used_at IS NULL AND voided_at IS NULL AND
  expires_at > now``: of two agents racing with the same token exactly one gets a row.
* **The broker first, then the commit**: the token is marked used in the same transaction that
  is committed only after the broker's files were rewritten, so a broker failure leaves the token
  unspent and the agent may retry.
* **Rotation** is a new token for the same gateway: when the agent redeems it, the account's
  password is replaced (same username), so the old password stops working at the broker's reload;
  until then the gateway keeps running on the old one.
* **Audit**: issuing a token, enrolling (or rotating) and revoking each write a row of the admin
  audit log (:mod:`cloud.db.audit`) in the same transaction.
* **Revocation** removes the account from the broker (no new connection, and the ACL lines of a
  session still open are gone) and voids every unspent token of the gateway.

Only a token's SHA-256 is stored. Tokens carry 192 random bits, so guessing is no attack worth a
rate limit; an unknown, spent, voided or expired token gets the same answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row

from cloud.db import audit
from cloud.registry.broker import BrokerAccount
from cloud.registry.provisioning import BrokerFiles, put_account, remove_account

TOKEN_PREFIX = "gjb_"
DEFAULT_TTL = dt.timedelta(hours=24)


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(slots=True)
class GatewayIdentity:
    gateway_id: int
    community: str
    gateway: str
    broker_username: str | None
    credentials_issued_at: dt.datetime | None
    credentials_revoked_at: dt.datetime | None


_IDENTITY = ("SELECT g.id AS gateway_id, c.code AS community, g.code AS gateway, g.broker_username, "
             "g.credentials_issued_at, g.credentials_revoked_at "
             "FROM gateways g JOIN communities c ON c.id = g.community_id WHERE g.id = %s")


async def gateway_identity(conn: AsyncConnection[Any], gateway_id: int) -> GatewayIdentity | None:
    async with conn.cursor(row_factory=class_row(GatewayIdentity)) as cur:
        await cur.execute(_IDENTITY, (gateway_id,))
        return await cur.fetchone()


async def issue_token(conn: AsyncConnection[Any], gateway_id: int, *, created_by: str, now: dt.datetime,
                      ttl: dt.timedelta = DEFAULT_TTL) -> tuple[str, dt.datetime]:
    """A new bootstrap token for the gateway (first enrolment or rotation) and its expiry."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(24)
    expires_at = now + ttl
    await conn.execute(
        "INSERT INTO gateway_bootstrap_tokens (gateway_id, token_hash, created_by, created_at, expires_at) "
        "VALUES (%s, %s, %s, %s, %s)", (gateway_id, _hash(token), created_by, now, expires_at))
    identity = await gateway_identity(conn, gateway_id)
    if identity is not None:
        await audit.record(conn, at=now, actor=created_by, action="gateway.token_issued", community=identity.community,
                           target=f"gateway {identity.community}/{identity.gateway}",
                           detail={"expires_at": expires_at.isoformat()})
    return token, expires_at


async def redeem(conn: AsyncConnection[Any], token: str,
                 now: dt.datetime) -> tuple[GatewayIdentity, BrokerAccount] | None:
    """Spend ``token``: the gateway and its new broker account (password generated now), or
    ``None`` when the token is unknown, spent, voided or expired. The caller writes the account
    to the broker and only then commits (see the module docstring)."""
    cur = await conn.execute(
        "UPDATE gateway_bootstrap_tokens SET used_at = %s WHERE token_hash = %s AND used_at IS NULL "
        "AND voided_at IS NULL AND expires_at > %s RETURNING gateway_id", (now, _hash(token), now))
    row = await cur.fetchone()
    if row is None:
        return None
    identity = await gateway_identity(conn, int(row[0]))
    assert identity is not None  # the foreign key holds it
    account = BrokerAccount.gateway(identity.community, identity.gateway)
    await conn.execute(
        "UPDATE gateways SET broker_username = %s, credentials_ref = 'broker-files', credentials_issued_at = %s, "
        "credentials_revoked_at = NULL WHERE id = %s", (account.username, now, identity.gateway_id))
    await audit.record(conn, at=now, actor=f"gateway:{account.username}", action="gateway.enrolled",
                       community=identity.community, target=f"gateway {identity.community}/{identity.gateway}",
                       detail={"rotated": identity.credentials_issued_at is not None})
    return identity, account


async def revoke(conn: AsyncConnection[Any], gateway_id: int, now: dt.datetime, *, actor: str) -> str:
    """Mark the gateway's credentials revoked and void its unspent tokens; the broker username to remove."""
    identity = await gateway_identity(conn, gateway_id)
    assert identity is not None
    await audit.record(conn, at=now, actor=actor, action="gateway.revoked", community=identity.community,
                       target=f"gateway {identity.community}/{identity.gateway}")
    await conn.execute("UPDATE gateways SET credentials_revoked_at = %s WHERE id = %s", (now, gateway_id))
    await conn.execute("UPDATE gateway_bootstrap_tokens SET voided_at = %s WHERE gateway_id = %s "
                       "AND used_at IS NULL AND voided_at IS NULL", (now, gateway_id))
    return identity.broker_username or BrokerAccount.gateway(identity.community, identity.gateway).username


async def enroll(conn: AsyncConnection[Any], files: BrokerFiles, token: str,
                 now: dt.datetime) -> tuple[GatewayIdentity, BrokerAccount] | None:
    """Spend the token and put the new account into the broker; the caller's transaction commits
    only if this returns (a broker failure raises :class:`~cloud.runtime.errors.BrokerError` or
    ``OSError`` and the caller rolls back, leaving the token unspent)."""
    redeemed = await redeem(conn, token, now)
    if redeemed is not None:
        await asyncio.to_thread(put_account, files, redeemed[1])
    return redeemed


async def revoke_gateway(conn: AsyncConnection[Any], files: BrokerFiles, gateway_id: int, now: dt.datetime, *,
                         actor: str) -> str:
    """:func:`revoke` plus the broker: the account is removed from its files and the broker reloaded."""
    username = await revoke(conn, gateway_id, now, actor=actor)
    await asyncio.to_thread(remove_account, files, username)
    return username
