"""Plans and planned orders against the database (SQL lives here, typed rows out).

The scheduler's whole memory is in these tables — which order is open for which plan and
device, when each device was last maintained — so a restarted service continues where it was,
and two service processes cannot open the same planned order twice: the scheduler holds a
transaction-scoped advisory lock per (plan, device) while it checks and inserts, and the partial
unique indexes of ``400_maintenance.sql`` refuse a second open order or a second order for the
same due date even if that lock were bypassed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, NamedTuple
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row
from psycopg.types.json import Jsonb

from cloud.db.rows import fetch_one, insert_sql
from cloud.ops.maintenance.schedule import Health
from cloud.ops.maintenance.templates import Catalog, Template
from cloud.ops.model.errors import InvalidRequest, found

Scope = Literal["device", "building", "community"]


@dataclass(frozen=True, slots=True)
class Plan:
    id: int
    community: str
    scope: str
    target: str
    template: str
    starts_on: date
    interval_days: int | None
    lead_days: int | None
    condition_based: bool
    assignee_id: int | None
    active: bool
    created_at: datetime
    timezone: str

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class Target:
    """A device a plan applies to."""

    code: str
    kind: str
    building: str | None


class PlanRow(NamedTuple):
    community: str
    scope: str
    target: str
    template: str
    starts_on: date
    interval_days: int | None
    lead_days: int | None
    condition_based: bool
    assignee_id: int | None
    created_at: datetime


class OrderRow(NamedTuple):
    plan_id: int
    work_order_id: int
    community: str
    device: str
    device_kind: str
    template: str
    due_on: date
    due_at: datetime
    interval_days: int
    interval_reason: str
    created_at: datetime


_PLAN_SELECT = """SELECT p.id, p.community, p.scope, p.target, p.template, p.starts_on, p.interval_days,
       p.lead_days, p.condition_based, p.assignee_id, p.active, p.created_at,
       coalesce(c.timezone, 'Asia/Shanghai') AS timezone
  FROM maintenance_plans p LEFT JOIN communities c ON c.code = p.community"""


async def create_plan(conn: AsyncConnection[Any], catalog: Catalog, *, community: str, scope: Scope, target: str,
                      template: str, starts_on: date, now: datetime, interval_days: int | None = None,
                      lead_days: int | None = None, condition_based: bool = False,
                      assignee_id: int | None = None) -> Plan:
    """Validate against the catalog and the registry, then insert; raise InvalidRequest naming the field."""
    try:
        tpl = catalog.get(template)
    except KeyError as exc:
        raise InvalidRequest(f"template: {exc.args[0]}") from None
    await _check_terms(conn, tpl, community, interval_days, assignee_id)
    if not date(2000, 1, 1) <= starts_on <= date(2099, 12, 31):
        raise InvalidRequest("starts_on: between 2000-01-01 and 2099-12-31 / 起始日期超出范围")
    if scope == "community" and target:
        raise InvalidRequest("target: a community-wide plan names no target")
    row = PlanRow(community, scope, target, template, starts_on, interval_days, lead_days, condition_based,
                  assignee_id, now)
    plan = Plan(0, community, scope, target, template, starts_on, interval_days, lead_days, condition_based,
                assignee_id, True, now, "Asia/Shanghai")
    devices = await targets(conn, plan, tpl.kind)
    if not devices:
        raise InvalidRequest(f"target: no {tpl.kind} device in {community} {scope} {target!r} / 范围内没有该类设备")
    cur = await conn.execute(insert_sql("maintenance_plans", PlanRow, returning="id"), row)
    got = await cur.fetchone()
    assert got is not None
    return await get_plan(conn, int(got[0]))


async def _check_terms(conn: AsyncConnection[Any], tpl: Template, community: str, interval_days: int | None,
                       assignee_id: int | None) -> None:
    if interval_days is not None and not tpl.bounds.min_days <= interval_days <= tpl.bounds.max_days:
        raise InvalidRequest(f"interval_days: {interval_days} lies outside the template's bounds "
                             f"[{tpl.bounds.min_days}, {tpl.bounds.max_days}] / 周期超出模板范围")
    if assignee_id is not None:
        cur = await conn.execute("SELECT 1 FROM butlers WHERE id = %s AND community = %s AND active",
                                 (assignee_id, community))
        if await cur.fetchone() is None:
            raise InvalidRequest(f"assignee_id: butler {assignee_id} does not serve {community} / 该管家不属于本小区")


async def get_plan(conn: AsyncConnection[Any], plan_id: int) -> Plan:
    return found(await fetch_one(conn, Plan, f"{_PLAN_SELECT} WHERE p.id = %s", (plan_id,)),
                 f"maintenance plan {plan_id} does not exist")


async def active_plans(conn: AsyncConnection[Any], community: str | None = None) -> list[Plan]:
    async with conn.cursor(row_factory=class_row(Plan)) as cur:
        await cur.execute(f"{_PLAN_SELECT} WHERE p.active AND (%s::text IS NULL OR p.community = %s) ORDER BY p.id",
                          (community, community))
        return await cur.fetchall()


async def targets(conn: AsyncConnection[Any], plan: Plan, kind: str) -> list[Target]:
    """The registry's devices of ``kind`` the plan covers (by device, building or community)."""
    async with conn.cursor(row_factory=class_row(Target)) as cur:
        await cur.execute(
            """SELECT d.code, d.kind, b.code AS building
                 FROM devices d JOIN communities c ON c.id = d.community_id
                 LEFT JOIN buildings b ON b.id = d.building_id
                WHERE c.code = %s AND d.kind = %s
                  AND (%s = 'community' OR (%s = 'device' AND d.code = %s) OR (%s = 'building' AND b.code = %s))
                ORDER BY d.code""",
            (plan.community, kind, plan.scope, plan.scope, plan.target, plan.scope, plan.target))
        return await cur.fetchall()


async def lock_plan_device(conn: AsyncConnection[Any], plan_id: int, device: str) -> None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 400))", (f"{plan_id}\x1f{device}",))


async def has_open(conn: AsyncConnection[Any], plan_id: int, device: str) -> bool:
    cur = await conn.execute("SELECT 1 FROM maintenance_orders WHERE plan_id = %s AND device = %s "
                             "AND state IN ('open', 'submitted')", (plan_id, device))
    return await cur.fetchone() is not None


async def open_order(conn: AsyncConnection[Any], plan_id: int, device: str) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM maintenance_orders WHERE plan_id = %s AND device = %s "
                          "AND state IN ('open', 'submitted')", (plan_id, device))
        return await cur.fetchone()


async def last_completed(conn: AsyncConnection[Any], community: str, device: str, template: str) -> datetime | None:
    """When ``template`` was last completed on the device, under any plan (both signatures given)."""
    cur = await conn.execute(
        "SELECT max(submitted_at) FROM maintenance_orders WHERE community = %s AND device = %s AND template = %s "
        "AND state = 'completed'", (community, device, template))
    row = await cur.fetchone()
    return row[0] if row else None


async def health(conn: AsyncConnection[Any], community: str, device: str) -> Health | None:
    """The device's current health record (analytics) and its open detections, if any."""
    cur = await conn.execute(
        """SELECT h.score, extract(epoch FROM h.window_end - h.window_start) / 86400.0, h.record,
                  (SELECT count(*) FROM analytics_detections x WHERE x.device_id = d.id AND x.open)
             FROM device_health h JOIN devices d ON d.id = h.device_id JOIN communities c ON c.id = d.community_id
            WHERE c.code = %s AND d.code = %s""", (community, device))
    row = await cur.fetchone()
    if row is None:
        return None
    score, window_days, record, detections = row
    figures = record if isinstance(record, dict) else {}  # the figures of cloud.analytics.health
    return Health(int(score), float(window_days or 0), figures, int(detections))


async def insert_order(conn: AsyncConnection[Any], row: OrderRow) -> int:
    cur = await conn.execute(insert_sql("maintenance_orders", OrderRow, returning="id"), row)
    got = await cur.fetchone()
    assert got is not None
    return int(got[0])


async def find_order(conn: AsyncConnection[Any], wo_id: int, *, lock: bool = False) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT * FROM maintenance_orders WHERE work_order_id = %s{' FOR UPDATE' if lock else ''}",
                          (wo_id,))
        return await cur.fetchone()


async def order_for_work_order(conn: AsyncConnection[Any], wo_id: int, *, lock: bool = False) -> dict[str, Any]:
    """The planned order behind work order ``wo_id``; an ordinary repair order has none (a request
    error, not a missing resource: the work order exists)."""
    row = await find_order(conn, wo_id, lock=lock)
    if row is None:
        raise InvalidRequest(f"work order {wo_id} is not a planned maintenance order / 不是计划维保工单")
    return row


async def record_submission(conn: AsyncConnection[Any], order_id: int, checklist: list[dict[str, Any]],
                            maintainer: str, signature: str, now: datetime) -> None:
    await conn.execute(
        "UPDATE maintenance_orders SET state = 'submitted', checklist = %s, maintainer = %s, "
        "maintainer_signature = %s, submitted_at = %s WHERE id = %s",
        (Jsonb(checklist), maintainer, signature, now, order_id))


async def record_confirmation(conn: AsyncConnection[Any], order_id: int, staff: str, signature: str,
                              now: datetime) -> None:
    await conn.execute(
        "UPDATE maintenance_orders SET state = 'completed', confirmed_by = %s, staff_signature = %s, "
        "completed_at = %s WHERE id = %s", (staff, signature, now, order_id))


async def overdue_devices(conn: AsyncConnection[Any], now: datetime) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Open planned orders past their due instant, by (community, device)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT community, device, device_kind, template, due_on, work_order_id FROM maintenance_orders
                WHERE state IN ('open', 'submitted') AND due_at <= %s ORDER BY community, device, due_on""", (now,))
        rows = await cur.fetchall()
    out: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault((row["community"], row["device"]), []).append(row)
    return out


async def active_alarm_devices(conn: AsyncConnection[Any], rule: str) -> set[tuple[str, str]]:
    cur = await conn.execute("SELECT community, device FROM alarms WHERE rule = %s AND current AND active", (rule,))
    return {(c, d) for c, d in await cur.fetchall()}


async def orders(conn: AsyncConnection[Any], community: str, device: str | None = None) -> list[dict[str, Any]]:
    """Planned orders of a community (newest due first) for pages and the API."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT m.*, w.state AS work_order_state, w.assignee_id FROM maintenance_orders m
                 JOIN work_orders w ON w.id = m.work_order_id
                WHERE m.community = %s AND (%s::text IS NULL OR m.device = %s) ORDER BY m.due_on DESC, m.id DESC""",
            (community, device, device))
        return await cur.fetchall()


async def update_plan(conn: AsyncConnection[Any], catalog: Catalog, plan_id: int, *, interval_days: int | None,
                      lead_days: int | None, condition_based: bool, assignee_id: int | None, active: bool) -> Plan:
    """Edit a plan's interval, lead, condition-based switch, assignee or retire it (scope, target
    and template stay: another template is another plan). Open orders keep their due date; the
    next one follows the new terms."""
    plan = await get_plan(conn, plan_id)
    await _check_terms(conn, catalog.get(plan.template), plan.community, interval_days, assignee_id)
    await conn.execute("UPDATE maintenance_plans SET interval_days = %s, lead_days = %s, condition_based = %s,"
                       " assignee_id = %s, active = %s WHERE id = %s",
                       (interval_days, lead_days, condition_based, assignee_id, active, plan_id))
    return await get_plan(conn, plan_id)


async def plan_orders(conn: AsyncConnection[Any], plan_id: int) -> list[dict[str, Any]]:
    """A plan's planned orders, newest due first, with the work order's state (the plan's history)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT m.*, w.state AS work_order_state FROM maintenance_orders m
                 JOIN work_orders w ON w.id = m.work_order_id
                WHERE m.plan_id = %s ORDER BY m.due_on DESC, m.id DESC LIMIT 200""", (plan_id,))
        return await cur.fetchall()


async def actor_names(conn: AsyncConnection[Any], labels: set[str]) -> dict[str, str]:
    """Display names of trail actor labels (``butler:7``, ``user:3``) for the pages: the stored
    label stays the audit's key, people read the name."""
    ids = {kind: [int(x.split(":", 1)[1]) for x in labels if x.startswith(kind + ":") and x.split(":", 1)[1].isdigit()]
           for kind in ("butler", "user")}
    cur = await conn.execute(
        "SELECT 'butler:' || id, name FROM butlers WHERE id = ANY(%s)"
        " UNION ALL SELECT 'user:' || id, coalesce(nullif(display_name, ''), username) FROM users WHERE id = ANY(%s)",
        (ids["butler"], ids["user"]))
    return {str(label): str(name) for label, name in await cur.fetchall() if label is not None}
