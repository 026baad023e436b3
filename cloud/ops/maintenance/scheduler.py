"""The maintenance scheduler: opens planned work orders ahead of their due date, flags overdue
orders and non-compliant lifts — a component of ``guanjia cloud serve``.

One pass (:func:`run_once`, time injected) does, for every active plan and every device it covers:

1. skip the device if the plan already has an open order for it (the database's partial unique
   index is the backstop; an advisory lock per (plan, device) keeps two processes from racing);
2. compute the next due date from the last *completed* maintenance of the same template on the
   device (:func:`cloud.ops.maintenance.schedule.next_due`, in the community's time zone), the
   plan's own interval or the template's, condition-based within bounds if the plan opts in;
3. once local midnight ``lead_days`` before the due date has come, open a work order of origin
   ``planned`` — routed like a repair (or handed to the plan's assignee), due at the end of the due
   day: its on-site and resolve deadlines are that instant, so the ordinary escalation ticker
   climbs the chain when it passes — and record it in ``maintenance_orders``.

Then it compares two alarm rules with the truth, like the offline watchdog (only *changes* go
through the ordinary alarm lifecycle, so an alarm is raised once and cleared once):

* ``maintenance_overdue`` on a device with an open planned order past its due instant;
* ``lift_maintenance_noncompliant`` on a lift whose last completed half-monthly maintenance is more
  than 15 days old (特种设备安全监察条例 art. 31; a lift never maintained counts from its plan's
  start date).

Nothing is kept in memory between passes, so a restart loses nothing and repeats nothing: a pass
after a crash finds the orders the previous one committed. A due date missed while the service was
down is opened late (and is then already overdue) — never skipped.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.maintenance import repo
from cloud.ops.maintenance.schedule import Decision, creation_instant, day_end, day_start, local_date, next_due
from cloud.ops.maintenance.templates import Catalog, Text
from cloud.ops.model.actors import Actor
from cloud.ops.model.alarms import AlarmEvent, zh_label
from cloud.ops.model.policy import Policy
from cloud.ops.model.states import Action
from cloud.ops.workorders import repo as wo_repo
from guanjia.core.clock import Clock, to_ms

log = logging.getLogger(__name__)

SYSTEM_MAINTENANCE: Final = Actor.system("maintenance")
OVERDUE_RULE: Final = "maintenance_overdue"
NONCOMPLIANT_RULE: Final = "lift_maintenance_noncompliant"
HALF_MONTHLY: Final = "lift.half_monthly"
LEGAL_MAX: Final = timedelta(days=15)
PRIORITY: Final = "P3"


@dataclass(slots=True)
class PassResult:
    opened: list[int] = field(default_factory=list)
    """Work-order ids opened in this pass."""
    overdue_raised: list[str] = field(default_factory=list)
    overdue_cleared: list[str] = field(default_factory=list)
    noncompliant_raised: list[str] = field(default_factory=list)
    noncompliant_cleared: list[str] = field(default_factory=list)


async def run_once(conn: AsyncConnection[Any], policy: Policy, catalog: Catalog, now: datetime) -> PassResult:
    result = PassResult()
    for plan in await repo.active_plans(conn):
        try:
            template = catalog.get(plan.template)
        except KeyError as exc:
            log.error("maintenance plan %s: %s", plan.id, exc.args[0])
            continue
        for device in await repo.targets(conn, plan, template.kind):
            try:
                async with conn.transaction():
                    wo_id = await _schedule(conn, policy, catalog, plan, device, now)
            except psycopg.Error as exc:  # one broken plan/device must not stop the others
                log.error("maintenance plan %s, device %s: %s", plan.id, device.code, exc)
                continue
            if wo_id is not None:
                result.opened.append(wo_id)
    await _overdue_alarms(conn, policy, now, result)
    await _compliance_alarms(conn, policy, now, result)
    return result


async def decide(conn: AsyncConnection[Any], catalog: Catalog, plan: repo.Plan,
                 device: str) -> tuple[datetime | None, Decision]:
    """When the plan's template was last completed on ``device``, and when it is due next."""
    template = catalog.get(plan.template)
    done_at = await repo.last_completed(conn, plan.community, device, plan.template)
    last_done = local_date(done_at, plan.zone) if done_at is not None else None
    health = await repo.health(conn, plan.community, device) if plan.condition_based else None
    return done_at, next_due(template, last_done=last_done, starts_on=plan.starts_on, plan_days=plan.interval_days,
                             condition_based=plan.condition_based, health=health)


@dataclass(frozen=True, slots=True)
class DeviceStatus:
    """One device of a plan, for the plan page and the API (times in the community's zone)."""

    device: str
    building: str | None
    last_completed: datetime | None
    next_due: date
    interval_days: int
    reason: str
    open_work_order: int | None
    overdue: bool
    compliant: bool | None
    """Lifts under a half-monthly plan: maintained within the last 15 days; ``None`` for the rest."""


async def plan_status(conn: AsyncConnection[Any], catalog: Catalog, plan: repo.Plan,
                      now: datetime) -> list[DeviceStatus]:
    template = catalog.get(plan.template)
    out: list[DeviceStatus] = []
    for device in await repo.targets(conn, plan, template.kind):
        done_at, decision = await decide(conn, catalog, plan, device.code)
        open_order = await repo.open_order(conn, plan.id, device.code)
        due_on = open_order["due_on"] if open_order else decision.due_on
        compliant = None
        if plan.template == HALF_MONTHLY:
            since = done_at if done_at is not None else day_start(plan.starts_on, plan.zone)
            compliant = now - since <= LEGAL_MAX
        out.append(DeviceStatus(
            device=device.code, building=device.building,
            last_completed=done_at.astimezone(plan.zone) if done_at else None, next_due=due_on,
            interval_days=open_order["interval_days"] if open_order else decision.interval_days,
            reason=open_order["interval_reason"] if open_order else decision.reason,
            open_work_order=open_order["work_order_id"] if open_order else None,
            overdue=now >= day_end(due_on, plan.zone), compliant=compliant))
    return out


async def _schedule(conn: AsyncConnection[Any], policy: Policy, catalog: Catalog, plan: repo.Plan,
                    device: repo.Target, now: datetime) -> int | None:
    template = catalog.get(plan.template)
    await repo.lock_plan_device(conn, plan.id, device.code)
    if await repo.has_open(conn, plan.id, device.code):
        return None
    zone = plan.zone
    _, decision = await decide(conn, catalog, plan, device.code)
    lead = plan.lead_days if plan.lead_days is not None else template.lead_days
    if now < creation_instant(decision.due_on, lead, zone):
        return None
    due_at = day_end(decision.due_on, zone)
    items = "\n".join(f"- {item.text}" for item in template.items)
    new = wo_repo.NewOrder(
        community=plan.community, title=f"{device.code}: {template.name.en}",
        title_zh=f"{device.code}：{template.name.zh}",
        origin="planned", priority=PRIORITY, building=device.building, device=device.code,
        device_kind=device.kind, skill=template.skill,
        description=(f"计划维保，{decision.due_on.isoformat()} 前完成 / planned maintenance, due "
                     f"{decision.due_on.isoformat()}\n{decision.reason}\n{items}"),
        due=due_at)
    wo = await wo_repo.open_order(conn, policy, new, now, SYSTEM_MAINTENANCE)
    assert wo is not None  # no alarm: the alarm uniqueness cannot refuse it
    await repo.insert_order(conn, repo.OrderRow(
        plan_id=plan.id, work_order_id=wo["id"], community=plan.community, device=device.code,
        device_kind=device.kind, template=plan.template, due_on=decision.due_on, due_at=due_at,
        interval_days=decision.interval_days, interval_reason=decision.reason, created_at=now))
    await wo_repo.add_trail(conn, wo["id"], now, "planned", SYSTEM_MAINTENANCE, note=decision.reason,
                            data={"plan_id": plan.id, "template": plan.template, "due_on": decision.due_on.isoformat(),
                                  "interval_days": decision.interval_days})
    if plan.assignee_id is not None and wo["assignee_id"] != plan.assignee_id:
        action = Action.assign if wo["state"] in ("new", "rejected") else Action.reassign
        await wo_repo.transition(conn, policy, wo["id"], action, SYSTEM_MAINTENANCE, now,
                                 note="计划指定的维保人 / the plan's assignee", assignee_id=plan.assignee_id)
    log.info("planned order %s: %s on %s due %s", wo["id"], plan.template, device.code, decision.due_on)
    return int(wo["id"])


def _event(community: str, device: str, kind: str | None, rule: str, state: str, now: datetime,
           message: Text, severity: str) -> AlarmEvent:
    return AlarmEvent(community=community, device=device, rule=rule, state=state,  # type: ignore[arg-type]
                      ts=to_ms(now), severity=severity, message=message.en, labels=zh_label(message.zh),
                      work_order=False, source="system", device_kind=kind)


async def _overdue_alarms(conn: AsyncConnection[Any], policy: Policy, now: datetime, result: PassResult) -> None:
    overdue = await repo.overdue_devices(conn, now)
    alarmed = await repo.active_alarm_devices(conn, OVERDUE_RULE)
    for (community, device), rows in overdue.items():
        if (community, device) in alarmed:
            continue
        listed = ", ".join(f"{r['template']} (#{r['work_order_id']}, {r['due_on'].isoformat()})" for r in rows)
        await apply_event(conn, policy, _event(community, device, rows[0]["device_kind"], OVERDUE_RULE, "raise", now,
                                               Text(zh=f"计划维保逾期：{listed}",
                                                    en=f"planned maintenance overdue: {listed}"), "minor"), now)
        result.overdue_raised.append(device)
    for community, device in sorted(alarmed - set(overdue)):
        await apply_event(conn, policy, _event(community, device, None, OVERDUE_RULE, "clear", now,
                                               Text(zh="逾期维保已完成", en="overdue maintenance done"), "minor"), now)
        result.overdue_cleared.append(device)


async def _compliance_alarms(conn: AsyncConnection[Any], policy: Policy, now: datetime, result: PassResult) -> None:
    late: dict[tuple[str, str], Text] = {}
    for plan in await repo.active_plans(conn):
        if plan.template != HALF_MONTHLY:
            continue
        for lift in await repo.targets(conn, plan, "elevator"):
            key = (plan.community, lift.code)
            done_at = await repo.last_completed(conn, plan.community, lift.code, HALF_MONTHLY)
            since = done_at if done_at is not None else day_start(plan.starts_on, plan.zone)
            if now - since > LEGAL_MAX:
                days = (now - since).days
                late[key] = Text(zh=f"距上次半月维保 {days} 天（法定不超过 15 天）",
                                 en=f"{days} days since the last half-monthly maintenance (at most 15 allowed)")
    alarmed = await repo.active_alarm_devices(conn, NONCOMPLIANT_RULE)
    for (community, device), why in sorted(late.items()):
        if (community, device) not in alarmed:
            await apply_event(conn, policy, _event(community, device, "elevator", NONCOMPLIANT_RULE, "raise", now,
                                                   why, "major"), now)
            result.noncompliant_raised.append(device)
    for community, device in sorted(alarmed - set(late)):
        await apply_event(conn, policy, _event(community, device, "elevator", NONCOMPLIANT_RULE, "clear", now,
                                               Text(zh="维保已合规", en="maintenance compliant again"), "major"), now)
        result.noncompliant_cleared.append(device)


class MaintenanceScheduler:
    """Cloud-service component: a scheduler pass every ``interval`` seconds (default 5 min)."""

    name = "maintenance-scheduler"

    def __init__(self, policy: Policy, catalog: Catalog, clock: Clock, interval: float = 300.0) -> None:
        self.policy = policy
        self.catalog = catalog
        self.clock = clock
        self.interval = interval
        self.opened = 0
        self.errors = 0

    async def tick(self, pool: AsyncConnectionPool[Any]) -> PassResult:
        async with asyncio.timeout(120), pool.connection() as conn:
            result = await run_once(conn, self.policy, self.catalog, self.clock.now())
        self.opened += len(result.opened)
        return result

    async def run(self, ctx: Any) -> None:
        ctx.metrics.gauge("guanjia_maintenance_orders_opened", "planned work orders opened by this process",
                          lambda: float(self.opened))
        while True:
            try:
                await self.tick(ctx.pool)
            except (psycopg.Error, TimeoutError) as exc:
                self.errors += 1
                log.warning("maintenance scheduler pass failed: %s", exc)
            await asyncio.sleep(self.interval)
