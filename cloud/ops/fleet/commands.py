"""Submitting a remote command: check it, then queue it or record its refusal (one entry point for
the API and the device page, so both audit and refuse alike)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from psycopg import AsyncConnection

from cloud.ops.fleet import configs, repo
from cloud.ops.fleet.errors import CommandRefused
from cloud.ops.fleet.validate import Value, check_action, check_command
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


async def submit(conn: AsyncConnection[Any], *, device_id: int, point: str, value: Value | None, issued_by: str,
                 now: dt.datetime, expires_in: dt.timedelta = DEFAULT_EXPIRY,
                 profiles: Mapping[str, Profile] | None = None, action: bool = False,
                 alarm_id: int | None = None) -> repo.CommandRow | None:
    """The stored command: ``pending`` (the dispatcher sends it when the gateway is online) or
    ``rejected`` with the reason (audited, never sent). ``None`` when the device does not exist.
    Never raises for a bad command: the refusal is a row of the trail, and the caller commits it.
    With ``action`` the command is the profile command named ``point`` (``value`` is ignored);
    ``alarm_id`` is the alarm episode of a rule that asked for it (one command per episode)."""
    target = await repo.command_target(conn, device_id)
    if target is None:
        return None
    expires_in = min(max(expires_in, dt.timedelta(seconds=1)), MAX_EXPIRY)
    rejected: tuple[str, str] | None = None
    if profiles is None:
        # the gateway's own pushed profiles first: they are what its agent writes with
        pushed = await configs.running_profiles(conn, target.community, target.gateway) if target.gateway else {}
        profiles = {**known_profiles(), **pushed}
    try:
        if action:
            value = None
            check_action(profiles, target.profile_id, point)
        elif value is None:
            raise CommandRefused("bad_value", f"{point}: a write needs a value")
        else:
            value = check_command(profiles, target.profile_id, point, value)
        if target.gateway is None:
            raise CommandRefused("no_gateway", f"{target.device} is not attached to a gateway")
    except CommandRefused as exc:
        rejected = (exc.reason, exc.detail)
    row = await repo.record(conn, command_id=new_command_id(), target=target, point=point[:64], value=value,
                            issued_by=issued_by, now=now, expires_at=now + expires_in, rejected=rejected,
                            kind="action" if action else "write", alarm_id=alarm_id)
    if rejected is None:
        # delivered at commit: the dispatcher (any process) sends it now instead of at its next tick
        await conn.execute("SELECT pg_notify(%s, '')", (NOTIFY_CHANNEL,))
    return row
