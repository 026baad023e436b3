"""Alarm and work-order history of one device (tables of the WORKORDERS part, read-only here)."""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row


async def device_alarms(conn: AsyncConnection[Any], community: str, device: str, limit: int) -> list[dict[str, Any]]:
    """The device's latest alarms; ``inhibited``/``inhibited_by`` let the page mark those grouped
    under their gateway's offline alarm (they have no work order of their own)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT id, rule, severity, active, acknowledged, message, raised_at, cleared_at, raise_count,"
            "       inhibited, inhibited_by"
            "  FROM alarms WHERE community = %s AND device = %s ORDER BY raised_at DESC LIMIT %s",
            (community, device, limit))
        return await cur.fetchall()


async def device_work_orders(conn: AsyncConnection[Any], community: str, device: str,
                             limit: int) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "SELECT w.id, w.title, w.state, w.priority, w.created_at, w.resolved_at, b.name AS assignee"
            "  FROM work_orders w LEFT JOIN butlers b ON b.id = w.assignee_id"
            " WHERE w.community = %s AND w.device = %s ORDER BY w.created_at DESC LIMIT %s",
            (community, device, limit))
        return await cur.fetchall()
