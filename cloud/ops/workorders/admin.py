"""The operator's reads and set-up writes behind ``guanjia cloud wo`` — the SQL the command line
used to carry itself.

Why a module of its own and synchronous: the command line runs one short statement on one
connection (:func:`cloud.db.pool.connect`), so an event loop buys nothing; the service's async
repositories (:mod:`cloud.ops.workorders.repo`, :mod:`cloud.ops.workorders.queries`) keep their
transaction rules and stay untouched. Reads return typed rows (a ``NamedTuple`` whose field order
is the ``SELECT`` list) except :func:`order_with_trail`, which hands back whole rows (``SELECT *``)
because the command prints an order field by field and its trail as it is.

Nothing here changes an order's state: that goes through the API or the web inbox, so the state
machine, the trail and the notifications apply. Adding a webhook endpoint is set-up, not a
transition; adding a butler goes through :mod:`cloud.ops.routing.staff` (the admin API's checks
and audit row).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import psycopg
from psycopg.rows import dict_row

from cloud.ops.model.errors import InvalidRequest


class OrderLine(NamedTuple):
    id: int
    community: str
    priority: str
    state: str
    title: str
    title_zh: str | None
    assignee: str
    escalation_level: int
    created_at: datetime


_ORDERS_SQL = """
SELECT w.id, w.community, w.priority, w.state, w.title, w.title_zh, coalesce(b.name, '-'), w.escalation_level,
       w.created_at
FROM work_orders w LEFT JOIN butlers b ON b.id = w.assignee_id
WHERE (%(c)s::text IS NULL OR w.community = %(c)s)
  AND (NOT %(open)s OR w.state NOT IN ('resolved', 'closed', 'cancelled'))
ORDER BY CASE WHEN w.state IN ('resolved', 'closed', 'cancelled') THEN 1 ELSE 0 END, w.priority, w.id DESC
LIMIT %(limit)s
"""


def list_orders(conn: psycopg.Connection[Any], community: str | None = None, *, open_only: bool = False,
                limit: int = 50) -> list[OrderLine]:
    """Work orders, unfinished first, then by priority and newest."""
    rows = conn.execute(_ORDERS_SQL, {"c": community, "open": open_only, "limit": limit}).fetchall()
    return [OrderLine(*r) for r in rows]


def order_with_trail(conn: psycopg.Connection[Any], wo_id: int) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """One order and its whole trail (oldest first), or None when there is no such order."""
    with conn.cursor(row_factory=dict_row) as cur:
        wo = cur.execute("SELECT * FROM work_orders WHERE id = %s", (wo_id,)).fetchone()
        if wo is None:
            return None
        trail = cur.execute("SELECT * FROM work_order_trail WHERE work_order_id = %s ORDER BY id", (wo_id,)).fetchall()
    return wo, trail


class AlarmLine(NamedTuple):
    id: int
    community: str
    device: str
    rule: str
    severity: str
    active: bool
    acknowledged: bool
    flaps: int
    last_raised_at: datetime
    source: str


_ALARMS_SQL = """
SELECT id, community, device, rule, severity, active, acknowledged, flaps, last_raised_at, source
FROM alarms WHERE current AND (%(c)s::text IS NULL OR community = %(c)s) AND (%(all)s OR active)
ORDER BY active DESC, last_raised_at DESC LIMIT 200
"""


def current_alarms(conn: psycopg.Connection[Any], community: str | None = None, *,
                   include_cleared: bool = False) -> list[AlarmLine]:
    """The current alarm of each (device, rule), active ones first (at most 200)."""
    rows = conn.execute(_ALARMS_SQL, {"c": community, "all": include_cleared}).fetchall()
    return [AlarmLine(*r) for r in rows]


def add_webhook(conn: psycopg.Connection[Any], url: str, secret: str, *, community: str | None = None,
                events: list[str] | None = None) -> int:
    """Register a signed webhook endpoint (``community`` None: every community; no events: all).
    The URL must be an absolute http(s) address; messenger robots belong in a butler's messengers."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest(f"webhook URL {url[:80]!r}: must be http(s)://host/path; group robots (wecom://, "
                             "dingtalk://, feishu://) are a butler's --messenger")
    if not secret:
        raise InvalidRequest("webhook secret must not be empty (it signs every delivery)")
    row = conn.execute("INSERT INTO webhook_endpoints (community, url, secret, events) VALUES (%s, %s, %s, %s) "
                       "RETURNING id", (community, url, secret, events or [])).fetchone()
    assert row is not None
    return int(row[0])
