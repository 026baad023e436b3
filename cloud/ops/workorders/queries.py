"""Read side for the API and pages: filtered, paged, tenant-scoped lists of alarms and work
orders, and who a signed-in user is as an :class:`Actor`.

Tenant scoping uses the WEB part's convention (``scope_params(user)`` → ``all`` and
``communities``): admins see every community, everyone else only their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.ops.model.actors import Actor


@dataclass(slots=True)
class Page:
    items: list[dict[str, Any]]
    total: int
    limit: int
    offset: int


async def actor_for(conn: AsyncConnection[Any], user_id: int, name: str, role: str) -> Actor:
    """A butler-role user acts as their butler record (if any); others act as themselves."""
    cur = await conn.execute("SELECT id FROM butlers WHERE user_id = %s AND active ORDER BY id LIMIT 1", (user_id,))
    row = await cur.fetchone()
    if row is not None and role in ("butler", "contractor"):  # a contractor acts as their field-staff record
        return Actor("butler", int(row[0]), name, role, int(row[0]))
    return Actor("user", user_id, name, role, int(row[0]) if row else None)


def _where(conds: list[str], params: dict[str, Any], column: str, value: Any, op: str = "=") -> None:
    if value is None:
        return
    key = f"p{len(params)}"
    params[key] = value
    conds.append(f"{column} {op} %({key})s" if op != "any" else f"{column} = ANY(%({key})s)")


async def list_alarms(conn: AsyncConnection[Any], scope: dict[str, Any], *, community: str | None = None,
                      device: str | None = None, rule: str | None = None, active: bool | None = None,
                      acknowledged: bool | None = None, severity: list[str] | None = None,
                      source: str | None = None, current_only: bool = True, limit: int = 50,
                      offset: int = 0) -> Page:
    params: dict[str, Any] = dict(scope)
    conds = ["(%(all)s OR community = ANY(%(communities)s))"]
    if current_only:
        conds.append("current")
    _where(conds, params, "community", community)
    _where(conds, params, "device", device)
    _where(conds, params, "rule", rule)
    _where(conds, params, "active", active)
    _where(conds, params, "acknowledged", acknowledged)
    _where(conds, params, "severity", severity or None, "any")
    _where(conds, params, "source", source)
    where = " AND ".join(conds)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT count(*) AS n FROM alarms WHERE {where}", params)
        total = (await cur.fetchone() or {"n": 0})["n"]
        await cur.execute(
            f"""SELECT a.*, (SELECT w.id FROM work_orders w WHERE w.alarm_id = a.id ORDER BY w.id DESC LIMIT 1)
                       AS work_order_id
                FROM alarms a WHERE {where} ORDER BY a.active DESC, a.last_raised_at DESC, a.id DESC
                LIMIT %(limit)s OFFSET %(offset)s""",
            params | {"limit": limit, "offset": offset},
        )
        items = await cur.fetchall()
    return Page(items, int(total), limit, offset)


async def alarm_trail(conn: AsyncConnection[Any], alarm_id: int) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM alarm_trail WHERE alarm_id = %s ORDER BY id", (alarm_id,))
        return await cur.fetchall()


async def alarm_rule(conn: AsyncConnection[Any], alarm_id: int | None) -> str | None:
    """The rule of an order's alarm (its zh/en title names the fault), or None."""
    if alarm_id is None:
        return None
    cur = await conn.execute("SELECT rule FROM alarms WHERE id = %s", (alarm_id,))
    row = await cur.fetchone()
    return None if row is None else str(row[0])


async def get_alarm(conn: AsyncConnection[Any], alarm_id: int) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM alarms WHERE id = %s", (alarm_id,))
        return await cur.fetchone()


async def list_work_orders(conn: AsyncConnection[Any], scope: dict[str, Any], *, community: str | None = None,
                           state: list[str] | None = None, priority: list[str] | None = None,
                           assignee_id: int | None = None, device: str | None = None, origin: str | None = None,
                           reporter_user_id: int | None = None, open_only: bool = False, overdue: bool = False,
                           now: Any = None, limit: int = 50, offset: int = 0) -> Page:
    params: dict[str, Any] = dict(scope)
    conds = ["(%(all)s OR community = ANY(%(communities)s))"]
    _where(conds, params, "community", community)
    _where(conds, params, "state", state or None, "any")
    _where(conds, params, "priority", priority or None, "any")
    _where(conds, params, "assignee_id", assignee_id)
    _where(conds, params, "device", device)
    _where(conds, params, "origin", origin)
    if reporter_user_id is not None:
        params["reporter"] = reporter_user_id
        conds.append("(reporter_user_id = %(reporter)s OR id IN (SELECT work_order_id FROM resident_reports "
                     "WHERE reporter_user_id = %(reporter)s))")
    if open_only:
        conds.append("state NOT IN ('resolved', 'closed', 'cancelled')")
    if overdue:
        params["now"] = now
        conds.append("""state NOT IN ('resolved', 'closed', 'cancelled', 'on_hold') AND (
            (accepted_at IS NULL AND respond_due < %(now)s) OR (on_site_at IS NULL AND on_site_due < %(now)s)
            OR resolve_due < %(now)s)""")
    where = " AND ".join(conds)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT count(*) AS n FROM work_orders WHERE {where}", params)
        total = (await cur.fetchone() or {"n": 0})["n"]
        await cur.execute(
            f"""SELECT *, (SELECT a.rule FROM alarms a WHERE a.id = work_orders.alarm_id) AS alarm_rule
                  FROM work_orders WHERE {where}
                ORDER BY CASE WHEN state IN ('resolved', 'closed', 'cancelled') THEN 1 ELSE 0 END, priority,
                         created_at DESC, id DESC
                LIMIT %(limit)s OFFSET %(offset)s""",
            params | {"limit": limit, "offset": offset},
        )
        items = await cur.fetchall()
    return Page(items, int(total), limit, offset)


async def contractor_orders(conn: AsyncConnection[Any], contractor_id: int, communities: list[str], *,
                            open_only: bool = False, limit: int = 50, offset: int = 0) -> Page:
    """Orders assigned to the field staff of contractor ``contractor_id`` in ``communities`` only."""
    where = ("w.community = ANY(%(communities)s) AND w.assignee_id IN "
             "(SELECT id FROM butlers WHERE contractor_id = %(contractor)s)")
    if open_only:
        where += " AND w.state NOT IN ('resolved', 'closed', 'cancelled')"
    params = {"communities": communities, "contractor": contractor_id, "limit": limit, "offset": offset}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT count(*) AS n FROM work_orders w WHERE {where}", params)
        total = (await cur.fetchone() or {"n": 0})["n"]
        await cur.execute(f"SELECT w.* FROM work_orders w WHERE {where} ORDER BY w.created_at DESC, w.id DESC "
                          "LIMIT %(limit)s OFFSET %(offset)s", params)
        items = await cur.fetchall()
    return Page(items, int(total), limit, offset)


async def reports_of(conn: AsyncConnection[Any], wo_id: int) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM resident_reports WHERE work_order_id = %s ORDER BY id", (wo_id,))
        return await cur.fetchall()


async def rating_of(conn: AsyncConnection[Any], wo_id: int) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT stars, comment, created_at FROM work_order_ratings WHERE work_order_id = %s",
                          (wo_id,))
        return await cur.fetchone()
