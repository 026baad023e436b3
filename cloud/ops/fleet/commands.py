"""Submitting a remote command: check it, then queue it or record its refusal (one entry point for
the API and the device page, so both audit and refuse alike)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from psycopg import AsyncConnection

from cloud.ops.fleet import repo
from cloud.ops.fleet.errors import CommandRefused
from cloud.ops.fleet.validate import Value, check_command
from device_profiles import Profile
from device_profiles.loader import builtin_profiles

NOTIFY_CHANNEL = "guanjia_device_commands"
"""Where :func:`submit` announces a queued command (the dispatcher LISTENs)."""
DEFAULT_EXPIRY = dt.timedelta(minutes=10)
MAX_EXPIRY = dt.timedelta(days=1)


def known_profiles() -> Mapping[str, Profile]:
    """The profiles the cloud checks commands against: the shipped library (see :mod:`.validate`)."""
    return builtin_profiles()


def new_command_id() -> str:
    """Unique on the wire without a round trip to the database (the edge echoes it in the reply)."""
    return f"c-{uuid.uuid4().hex[:20]}"


async def submit(conn: AsyncConnection[Any], *, device_id: int, point: str, value: Value, issued_by: str,
                 now: dt.datetime, expires_in: dt.timedelta = DEFAULT_EXPIRY,
                 profiles: Mapping[str, Profile] | None = None) -> repo.CommandRow | None:
    """The stored command: ``pending`` (the dispatcher sends it when the gateway is online) or
    ``rejected`` with the reason (audited, never sent). ``None`` when the device does not exist.
    Never raises for a bad command: the refusal is a row of the trail, and the caller commits it."""
    target = await repo.command_target(conn, device_id)
    if target is None:
        return None
    expires_in = min(max(expires_in, dt.timedelta(seconds=1)), MAX_EXPIRY)
    rejected: tuple[str, str] | None = None
    try:
        value = check_command(known_profiles() if profiles is None else profiles, target.profile_id, point, value)
        if target.gateway is None:
            raise CommandRefused("no_gateway", f"{target.device} is not attached to a gateway")
    except CommandRefused as exc:
        rejected = (exc.reason, exc.detail)
    row = await repo.record(conn, command_id=new_command_id(), target=target, point=point[:64], value=value,
                            issued_by=issued_by, now=now, expires_at=now + expires_in, rejected=rejected)
    if rejected is None:
        # delivered at commit: the dispatcher (any process) sends it now instead of at its next tick
        await conn.execute("SELECT pg_notify(%s, '')", (NOTIFY_CHANNEL,))
    return row
