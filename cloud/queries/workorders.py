"""Work orders as the butler inbox and the resident page read them, and the visibility checks
the JSON API and the pages share (who reported an order, which role a butler has).

Why here and not in :mod:`cloud.ops.workorders`: these are read models of the pages and the API
(tenant-scoped lists and checks), and the API router and the page call the *same* function for
the same question. Writes stay in the WORKORDERS part (state machine, trail, notifications).

The inbox rows stay dicts (``SELECT w.*`` plus derived columns): the inbox templates and the
one-tap actions read every column of the order, and the page adds its ``buttons`` and the
gateway incident's ``affected`` devices to each row.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row

from cloud.auth.users import User, scope_params

_NEXT_DUE = """CASE WHEN w.state IN ('new', 'assigned', 'rejected') THEN w.respond_due
                    WHEN w.state IN ('accepted', 'on_the_way') THEN w.on_site_due ELSE w.resolve_due END"""


@dataclass(frozen=True, slots=True)
class ResidentOrder:
    """An order on the resident's page: theirs, or one their report was linked to, with their rating."""

    id: int
    title: str
    title_zh: str | None
    """The title in Chinese (:mod:`guanjia.core.lang`; the page picks the reader's language)."""
    state: str
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    community: str
    stars: int | None
    comment: str | None
    butler: str | None


async def work_order(conn: AsyncConnection[Any], wo_id: int) -> dict[str, Any] | None:
    """The whole order row, or None. Visibility is the caller's check."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM work_orders WHERE id = %s", (wo_id,))
        return await cur.fetchone()


async def reported_by(conn: AsyncConnection[Any], wo_id: int, user_id: int) -> bool:
    """Whether ``user_id`` filed a report linked to the order: a resident sees the orders they
    reported, including those their report was linked to (API and pages alike)."""
    cur = await conn.execute("SELECT 1 FROM resident_reports WHERE work_order_id = %s AND reporter_user_id = %s",
                             (wo_id, user_id))
    return await cur.fetchone() is not None


async def open_orders(conn: AsyncConnection[Any], user: User, butler_id: int | None, *, gateway_rule: str,
                      limit: int = 200) -> list[dict[str, Any]]:
    """Open orders, most urgent deadline first: the butler's own when ``butler_id`` is given, else
    every open order of the user's communities (the dispatcher's view). ``gateway_order`` marks
    orders opened by a ``gateway_rule`` alarm (a gateway offline: its devices are listed by
    :func:`affected_devices`); the rule is the caller's, as the alarm model lives above this layer."""
    where = "w.assignee_id = %(butler)s" if butler_id is not None else "(%(all)s OR w.community = ANY(%(communities)s))"
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            f"""SELECT w.*, {_NEXT_DUE} AS next_due, d.id AS device_id, d.name AS device_name,
                       coalesce(a.rule = %(gateway_rule)s, false) AS gateway_order, a.rule AS alarm_rule
                  FROM work_orders w
                  LEFT JOIN communities c ON c.code = w.community
                  LEFT JOIN devices d ON d.community_id = c.id AND d.code = w.device
                  LEFT JOIN alarms a ON a.id = w.alarm_id
                 WHERE {where} AND w.state NOT IN ('resolved', 'closed', 'cancelled')
                 ORDER BY next_due, w.id LIMIT %(limit)s""",
            {**scope_params(user), "butler": butler_id, "limit": limit, "gateway_rule": gateway_rule})
        return await cur.fetchall()


async def affected_devices(conn: AsyncConnection[Any], gateway_alarms: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Per gateway-offline alarm, the devices whose alarms it groups (inhibition): code, name,
    rules and whether one is still active. Why not the order's description: that is one
    bilingual string written for webhooks and e-mail; the inbox renders a list in the reader's
    language, and ``inhibited_by`` stays set after an alarm is promoted, so the list is the
    incident's whole history."""
    if not gateway_alarms:
        return {}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT a.inhibited_by AS gateway_alarm, a.device, min(d.name) AS name,
                      string_agg(DISTINCT a.rule, ', ' ORDER BY a.rule) AS rules, bool_or(a.active) AS active
                 FROM alarms a
                 LEFT JOIN communities c ON c.code = a.community
                 LEFT JOIN devices d ON d.community_id = c.id AND d.code = a.device
                WHERE a.inhibited_by = ANY(%s)
                GROUP BY a.inhibited_by, a.device ORDER BY a.inhibited_by, a.device""", (gateway_alarms,))
        out: dict[int, list[dict[str, Any]]] = {}
        for row in await cur.fetchall():
            out.setdefault(row.pop("gateway_alarm"), []).append(row)
    return out


async def resident_orders(conn: AsyncConnection[Any], user: User, limit: int = 100) -> list[ResidentOrder]:
    async with conn.cursor(row_factory=class_row(ResidentOrder)) as cur:
        await cur.execute(
            """SELECT w.id, w.title, w.title_zh, w.state, w.created_at, w.resolved_at, w.community, r.stars,
                      r.comment, b.name AS butler
                 FROM work_orders w
                 LEFT JOIN work_order_ratings r ON r.work_order_id = w.id
                 LEFT JOIN butlers b ON b.id = w.assignee_id
                WHERE w.reporter_user_id = %(u)s
                   OR w.id IN (SELECT work_order_id FROM resident_reports WHERE reporter_user_id = %(u)s)
                ORDER BY w.created_at DESC LIMIT %(limit)s""", {"u": user.id, "limit": limit})
        return await cur.fetchall()


async def latest_alarm_order(conn: AsyncConnection[Any], community: str, device: str,
                             rule_prefix: str) -> dict[str, Any] | None:
    """The newest order opened by an alarm of ``device`` whose rule starts with ``rule_prefix``
    (``id``, ``priority``, ``state``, ``title``, ``title_zh``, ``assignee_id``), or None: the demo replay's
    answer to "which work order did the detection open". ``rule_prefix`` is a LIKE pattern's
    start (``_`` matches any character, as in the rule names it is used with)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT w.id, w.priority, w.state, w.title, w.title_zh, w.assignee_id
                 FROM work_orders w JOIN alarms a ON a.id = w.alarm_id
                WHERE a.community = %s AND a.device = %s AND a.rule LIKE %s
                ORDER BY w.id DESC LIMIT 1""", (community, device, rule_prefix + "%"))
        return await cur.fetchone()
