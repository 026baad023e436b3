"""The ``device_commands`` table (migration 600): the dispatcher's queue and the commands' audit trail.

Every state change is one conditional ``UPDATE … WHERE status = …`` so that two writers (the
dispatcher's tick and its reply listener) can never move a command backwards: a reply that lands
after the timeout turns ``timed_out`` into ``done``/``refused`` with ``late_reply``, but nothing
turns ``done`` into ``timed_out``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from guanjia.core.wire import CommandReply

Value = float | int | bool | str
OPEN = ("pending", "sent")

_COLUMNS = ("id, command_id, community, gateway, device_id, device, point, value, issued_by, status, reason, "
            "detail, created_at, expires_at, sent_at, finished_at, late_reply, kind")


@dataclass(slots=True)
class CommandRow:
    """One command as stored (the API's ``CommandOut`` and the device page show this)."""

    id: int
    command_id: str
    community: str
    gateway: str | None
    device_id: int | None
    device: str
    point: str
    """the point written, or the name of the action (``kind`` says which)"""
    value: Value | None
    """``None`` for an action"""
    issued_by: str
    status: str
    reason: str | None
    detail: str
    created_at: dt.datetime
    expires_at: dt.datetime
    sent_at: dt.datetime | None
    finished_at: dt.datetime | None
    late_reply: bool
    kind: str = "write"
    """``write`` (a point set to ``value``) or ``action`` (a command of the profile, e.g. ``open``)"""


@dataclass(slots=True)
class CommandTarget:
    """Where a command to a device goes: its codes, its gateway and its profile."""

    device_id: int
    device: str
    community: str
    gateway: str | None
    profile_id: str | None


async def device_id_of(conn: AsyncConnection[Any], community: str, device: str) -> int | None:
    """The registry id of a device by its codes (a rule's command names devices by code)."""
    cur = await conn.execute("SELECT d.id FROM devices d JOIN communities c ON c.id = d.community_id "
                             "WHERE c.code = %s AND d.code = %s", (community, device))
    row = await cur.fetchone()
    return int(row[0]) if row else None


async def command_target(conn: AsyncConnection[Any], device_id: int) -> CommandTarget | None:
    async with conn.cursor(row_factory=class_row(CommandTarget)) as cur:
        await cur.execute(
            "SELECT d.id AS device_id, d.code AS device, c.code AS community, g.code AS gateway, d.profile_id "
            "FROM devices d JOIN communities c ON c.id = d.community_id "
            "LEFT JOIN gateways g ON g.id = d.gateway_id WHERE d.id = %s", (device_id,))
        return await cur.fetchone()


async def record(conn: AsyncConnection[Any], *, command_id: str, target: CommandTarget, point: str,
                 value: Value | None, issued_by: str, now: dt.datetime, expires_at: dt.datetime,
                 rejected: tuple[str, str] | None = None, kind: str = "write",
                 alarm_id: int | None = None) -> CommandRow:
    """Insert a new command: ``pending``, or ``rejected`` with ``(reason, detail)`` (audited, never sent)."""
    status, reason, detail = ("pending", None, "") if rejected is None else ("rejected", *rejected)
    async with conn.cursor(row_factory=class_row(CommandRow)) as cur:
        await cur.execute(
            "INSERT INTO device_commands (command_id, community, gateway, device_id, device, point, value, issued_by, "
            "status, reason, detail, created_at, expires_at, finished_at, kind, alarm_id) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING " + _COLUMNS,
            (command_id, target.community, target.gateway, target.device_id, target.device, point, Jsonb(value),
             issued_by, status, reason, detail[:500], now, expires_at, now if rejected else None, kind, alarm_id))
        row = await cur.fetchone()
    assert row is not None
    return row


async def due(conn: AsyncConnection[Any], now: dt.datetime, limit: int = 500) -> list[CommandRow]:
    """Pending commands not yet expired, oldest first."""
    async with conn.cursor(row_factory=class_row(CommandRow)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM device_commands WHERE status = 'pending' AND expires_at > %s "
                          "ORDER BY id LIMIT %s", (now, limit))
        return await cur.fetchall()


async def expire(conn: AsyncConnection[Any], now: dt.datetime) -> list[CommandRow]:
    """``pending`` past ``expires_at`` → ``expired`` (never sent)."""
    async with conn.cursor(row_factory=class_row(CommandRow)) as cur:
        await cur.execute(
            "UPDATE device_commands SET status = 'expired', reason = 'expired', finished_at = %s, "
            "detail = 'the gateway was offline until the command expired' "
            f"WHERE status = 'pending' AND expires_at <= %s RETURNING {_COLUMNS}", (now, now))
        return await cur.fetchall()


async def time_out(conn: AsyncConnection[Any], now: dt.datetime, sent_before: dt.datetime) -> list[CommandRow]:
    """``sent`` with no reply since ``sent_before`` → ``timed_out``."""
    async with conn.cursor(row_factory=class_row(CommandRow)) as cur:
        await cur.execute(
            "UPDATE device_commands SET status = 'timed_out', reason = 'timed_out', finished_at = %s, "
            "detail = 'no reply from the gateway' "
            f"WHERE status = 'sent' AND sent_at <= %s RETURNING {_COLUMNS}", (now, sent_before))
        return await cur.fetchall()


async def mark_sent(conn: AsyncConnection[Any], row_id: int, now: dt.datetime) -> bool:
    cur = await conn.execute("UPDATE device_commands SET status = 'sent', sent_at = %s "
                             "WHERE id = %s AND status = 'pending'", (now, row_id))
    return cur.rowcount == 1


async def unsend(conn: AsyncConnection[Any], row_id: int) -> None:
    """Back to ``pending`` after a publish that failed (the next tick tries again, until expiry)."""
    await conn.execute("UPDATE device_commands SET status = 'pending', sent_at = NULL "
                       "WHERE id = %s AND status = 'sent'", (row_id,))


async def apply_reply(conn: AsyncConnection[Any], community: str, gateway: str, reply: CommandReply,
                      now: dt.datetime) -> CommandRow | None:
    """Store the edge's answer. Only for a command this gateway was sent (a reply naming another
    gateway's command is ignored); a reply after ``timed_out`` is stored with ``late_reply``."""
    async with conn.cursor(row_factory=class_row(CommandRow)) as cur:
        await cur.execute(
            "UPDATE device_commands SET status = %s, reason = %s, detail = %s, finished_at = %s, "
            "late_reply = (status = 'timed_out') "
            "WHERE command_id = %s AND community = %s AND gateway = %s AND status IN ('pending', 'sent', 'timed_out') "
            f"RETURNING {_COLUMNS}",
            ("done" if reply.ok else "refused", reply.reason, reply.detail, now, reply.id, community, gateway))
        return await cur.fetchone()


async def device_commands(conn: AsyncConnection[Any], device_id: int, limit: int = 50) -> list[CommandRow]:
    """The device's commands, newest first (its audit trail)."""
    async with conn.cursor(row_factory=class_row(CommandRow)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM device_commands WHERE device_id = %s "
                          "ORDER BY created_at DESC, id DESC LIMIT %s", (device_id, limit))
        return await cur.fetchall()


async def load_command(conn: AsyncConnection[Any], device_id: int, command_id: str) -> CommandRow | None:
    async with conn.cursor(row_factory=class_row(CommandRow)) as cur:
        await cur.execute(f"SELECT {_COLUMNS} FROM device_commands WHERE device_id = %s AND command_id = %s",
                          (device_id, command_id))
        return await cur.fetchone()
