"""Alarm and work-order history of one device (tables of the WORKORDERS part, read-only here).

The rows are pydantic models because they are *the* read model of the device page's history
tables and of ``GET /api/v1/devices/{id}/alarms`` / ``…/workorders`` alike: the API returns them
as its response schema, the page renders the same objects, so the two cannot drift apart.

Alarms and alarm-born work orders also carry their rule's zh/en title (``rule_title``, from the
shipped rule library), what the page shows first in the reader's language. An alarm's message
exists in both languages too: ``message`` as the edge rendered it (English), ``message_zh`` from
the rule's Chinese template (the alarm's ``message_zh`` label; None for a rule without one).
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from pydantic import BaseModel

from guanjia.core.lang import in_lang
from rules import builtin_rulesets
from rules.model import Title


@functools.cache
def rule_titles() -> dict[str, Title]:
    """zh/en titles of the shipped rules, by rule id (read once per process)."""
    return {c.id: c.rule.title for c in builtin_rulesets().rules if c.rule.title is not None}


class DeviceAlarm(BaseModel):
    """One alarm in a device's history (the full alarm, with its trail, is ``/api/v1/alarms/{id}``)."""

    def message_in(self, lang: str) -> str:
        """The message in the reader's language (Chinese by default; English where there is no zh)."""
        return in_lang(lang, self.message, self.message_zh)

    id: int
    rule: str
    severity: str
    active: bool
    acknowledged: bool
    message: str
    message_zh: str | None = None
    """The message in Chinese (rendered at the edge from the rule's ``message_zh``)."""
    raised_at: dt.datetime
    cleared_at: dt.datetime | None
    raise_count: int
    inhibited: bool = False
    """Grouped under its gateway's offline alarm (``inhibited_by``): no order or notification of its own."""
    inhibited_by: int | None = None
    """The gateway alarm that inhibits (or inhibited) it; kept as history after the alarm is promoted."""
    rule_title: Title | None = None
    """The rule's name in Chinese and English (None for a rule outside the shipped library)."""


class DeviceWorkOrder(BaseModel):
    """One work order in a device's history."""

    id: int
    title: str
    title_zh: str | None = None
    """The title in Chinese (:mod:`guanjia.core.lang`; None only for a row written by hand)."""
    state: str
    priority: str
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    assignee: str | None
    rule: str | None = None
    """The rule of the alarm that opened the order (None for a manual or resident order)."""
    rule_title: Title | None = None


async def device_alarms(conn: AsyncConnection[Any], community: str, device: str, limit: int) -> list[DeviceAlarm]:
    """The device's latest alarms; ``inhibited``/``inhibited_by`` let the page mark those grouped
    under their gateway's offline alarm (they have no work order of their own)."""
    async with conn.cursor(row_factory=class_row(DeviceAlarm)) as cur:
        await cur.execute(
            "SELECT id, rule, severity, active, acknowledged, message, labels ->> 'message_zh' AS message_zh,"
            "       raised_at, cleared_at, raise_count,"
            "       inhibited, inhibited_by"
            "  FROM alarms WHERE community = %s AND device = %s ORDER BY raised_at DESC LIMIT %s",
            (community, device, limit))
        rows = await cur.fetchall()
    titles = rule_titles()
    for row in rows:
        row.rule_title = titles.get(row.rule)
    return rows


async def device_work_orders(conn: AsyncConnection[Any], community: str, device: str,
                             limit: int) -> list[DeviceWorkOrder]:
    async with conn.cursor(row_factory=class_row(DeviceWorkOrder)) as cur:
        await cur.execute(
            "SELECT w.id, w.title, w.title_zh, w.state, w.priority, w.created_at, w.resolved_at, b.name AS assignee,"
            "       a.rule"
            "  FROM work_orders w LEFT JOIN butlers b ON b.id = w.assignee_id LEFT JOIN alarms a ON a.id = w.alarm_id"
            " WHERE w.community = %s AND w.device = %s ORDER BY w.created_at DESC LIMIT %s",
            (community, device, limit))
        rows = await cur.fetchall()
    titles = rule_titles()
    for row in rows:
        row.rule_title = titles.get(row.rule) if row.rule else None
    return rows
