"""Read model of :mod:`cloud.ops.automation`: raised alarms whose rule asks for a command."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row

from rules.ruleset import COMMAND_LABEL


@dataclass(slots=True)
class WantingAlarm:
    """An active alarm episode with a ``command`` label and no command yet."""

    id: int
    community: str
    device: str
    rule: str
    command: str
    """the label: the rule's command as JSON"""


async def wanting(conn: AsyncConnection[Any], since: dt.datetime, limit: int = 100) -> list[WantingAlarm]:
    """Active alarms raised since ``since`` whose labels carry a command and that have no
    ``device_commands`` row yet (the unique ``alarm_id`` index makes that at most one, ever)."""
    async with conn.cursor(row_factory=class_row(WantingAlarm)) as cur:
        await cur.execute(
            "SELECT a.id, a.community, a.device, a.rule, a.labels ->> %s AS command FROM alarms a "
            "WHERE a.active AND a.labels ? %s AND a.raised_at >= %s "
            "AND NOT EXISTS (SELECT 1 FROM device_commands c WHERE c.alarm_id = a.id) ORDER BY a.id LIMIT %s",
            (COMMAND_LABEL, COMMAND_LABEL, since, limit))
        return await cur.fetchall()
