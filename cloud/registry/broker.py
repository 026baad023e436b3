"""Broker accounts for production: who may connect, with which password hash and which ACL.

Why in the cloud and not in the development stack: provisioning a gateway against a production
Mosquitto (``guanjia cloud gateway add --passwd-file … --acl-file …``) is product code, and it
must not import the local dev stack (:mod:`guanjia.app.stack`) to hash a password or write an ACL
line. The dev stack's broker (:class:`guanjia.app.stack.mosquitto.MosquittoServer`) sits above the
cloud and uses these same definitions, so the accounts of a demo and of production are alike.

Anonymous access is off. Every account (each gateway, the cloud, the simulators, an admin) has a
password hashed the way ``mosquitto_passwd`` does it (PBKDF2-SHA512, ``$7$``) and an explicit ACL,
so a gateway can only publish under its own topic prefix.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Literal

from guanjia.core.wire import INGEST_STATUS_FILTER

Access = Literal["read", "write", "readwrite"]


@dataclass(slots=True)
class BrokerAccount:
    username: str
    password: str
    acl: list[tuple[Access, str]] = field(default_factory=list)

    @classmethod
    def gateway(cls, community: str, gateway: str, password: str | None = None) -> BrokerAccount:
        """A gateway publishes only under its own prefix, reads its own commands and its
        community's MQTT devices (``devices/{community}/#``), and the ingest workers' retained
        ``behind`` status (:data:`guanjia.core.wire.INGEST_STATUS_FILTER`, read only: a gateway
        that could write it would stop every other gateway's resends), and nothing else."""
        prefix = f"guanjia/v1/{community}/{gateway}"
        return cls(
            username=f"gw-{community}-{gateway}",
            password=password or secrets.token_urlsafe(18),
            acl=[
                ("write", f"{prefix}/telemetry"),
                ("write", f"{prefix}/alarms"),
                ("write", f"{prefix}/events"),
                ("write", f"{prefix}/status"),
                ("write", f"{prefix}/cmd/reply"),
                ("read", f"{prefix}/cmd"),
                ("read", f"{prefix}/status"),
                ("read", INGEST_STATUS_FILTER),
                ("read", f"devices/{community}/#"),
                ("write", f"devices/{community}/+/cmd"),   # actions to the MQTT devices (open a gate)
            ],
        )


    @classmethod
    def devices(cls, community: str, password: str | None = None) -> BrokerAccount:
        """The MQTT devices (gates) of one community share this account, confined to
        ``devices/{community}/#``: a gate's password found in one estate can neither read nor
        forge another estate's devices, nor touch any gateway topic. (One shared ``devices``
        account for every community was what issue 14 found.)"""
        return cls(username=devices_username(community), password=password or secrets.token_urlsafe(18),
                   acl=[("readwrite", f"devices/{community}/#")])


def devices_username(community: str) -> str:
    """The broker username of a community's device account."""
    return f"dev-{community}"


def hash_password(password: str, salt: bytes | None = None, iterations: int = 101) -> str:
    """Mosquitto 2.x password-file hash (``$7$`` = PBKDF2-SHA512), so no subprocess per account."""
    salt = salt or secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def passwd_line(account: BrokerAccount) -> str:
    """The account's line of Mosquitto's password file (a fresh salt each time)."""
    return f"{account.username}:{hash_password(account.password)}"


def acl_lines(account: BrokerAccount) -> list[str]:
    """The account's block of Mosquitto's ACL file: ``user NAME`` then one ``topic`` line per grant."""
    return [f"user {account.username}", *(f"topic {access} {topic}" for access, topic in account.acl)]
