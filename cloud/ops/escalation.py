"""Escalation: unaccepted or overdue work climbs the chain (butler → team lead → property manager).

Each work order carries ``next_escalation_at`` — the deadline of the clock that currently runs
(accept while new/assigned/rejected, on-site while accepted/on the way, resolve while on site;
paused on hold). When it passes, one step is taken: ``escalation_level`` + 1, the next person up
the chain is notified (with a reminder to the assignee), the trail records it, and the next
deadline is ``escalate_every`` later (``reminder_every`` once the chain is exhausted, so the top
of the chain keeps being reminded — nobody can forget an order). An unassigned order is also
offered to routing again at each step.

:class:`EscalationTicker` runs :func:`escalate_due` as a component of the cloud service; its clock
is injected, so tests move time instead of sleeping.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from cloud.ops.complaints import repo as complaints
from cloud.ops.model.actors import SYSTEM_ESCALATION
from cloud.ops.model.policy import Policy
from cloud.ops.notify.outbox import notify_butler, notify_webhooks, render_work_order
from cloud.ops.policies.repo import effective
from cloud.ops.routing.repo import chain
from cloud.ops.workorders import profile
from cloud.ops.workorders import repo as wo_repo
from guanjia.core.clock import Clock

log = logging.getLogger(__name__)

_WAITING_ACCEPT = ("new", "assigned", "rejected")
_WAITING_SITE = ("accepted", "on_the_way")


def _reason(state: str) -> str:
    if state in _WAITING_ACCEPT:
        return "not accepted in time"
    if state in _WAITING_SITE:
        return "nobody on site in time"
    return "not resolved in time"


async def escalate_one(conn: AsyncConnection[Any], policy: Policy, wo: dict[str, Any], now: datetime) -> int | None:
    """Take one escalation step for ``wo`` (locked by the caller); return the notified butler.
    The intervals are the community's own (:func:`cloud.ops.policies.repo.effective`)."""
    policy = await effective(conn, policy, wo["community"])
    if wo["state"] in ("new", "rejected"):
        exclude = frozenset({wo["assignee_id"]}) if wo["state"] == "rejected" and wo["assignee_id"] else frozenset()
        wo = await wo_repo.auto_assign(conn, policy, wo, now, exclude)
    level = wo["escalation_level"] + 1
    ladder = await chain(conn, wo["assignee_id"], wo["community"]) if wo["assignee_id"] else await chain(
        conn, -1, wo["community"])
    clocks = policy.priorities[wo["priority"]]
    target = ladder[min(level, len(ladder)) - 1] if ladder else None
    exhausted = level >= len(ladder)
    next_at = now + (policy.reminder_every if exhausted else clocks.escalate_every)
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            "UPDATE work_orders SET escalation_level = %s, next_escalation_at = %s, updated_at = %s WHERE id = %s "
            "RETURNING *", (level, next_at, now, wo["id"]))
        updated = await cur.fetchone()
    assert updated is not None
    reason = _reason(wo["state"])
    await wo_repo.add_trail(conn, wo["id"], now, "escalated", SYSTEM_ESCALATION, from_state=wo["state"],
                            to_state=wo["state"], note=f"level {level}: {reason}",
                            data={"level": level, "to": target, "reason": reason, "chain": ladder})
    event = "work_order.escalated"
    dedup = f"wo{wo['id']}:esc{level}:{now.timestamp()}"
    if target is not None:
        # a P0 nobody accepted also goes out by SMS: the next person up may not have the app open
        await notify_butler(conn, target, updated, event, now, reveal_pii=True, dedup=dedup,
                            sms=wo["priority"] == "P0" and wo["state"] in _WAITING_ACCEPT)
    if wo["assignee_id"] and wo["assignee_id"] != target:
        await notify_butler(conn, wo["assignee_id"], updated, "work_order.reminder", now, reveal_pii=True,
                            dedup=dedup)
    _, _, payload = render_work_order(updated, event, reveal_pii=False)
    payload["escalation"] = {"level": level, "to": target, "reason": reason}
    await notify_webhooks(conn, wo["community"], event, payload, now, work_order_id=wo["id"], alarm_id=wo["alarm_id"],
                          dedup=dedup)
    log.info("work order %s escalated to level %s (%s) → butler %s", wo["id"], level, reason, target)
    return target


async def escalate_due(conn: AsyncConnection[Any], policy: Policy, now: datetime, limit: int = 100) -> int:
    """Escalate every order whose clock has run out; several service processes share the work
    (``SKIP LOCKED``). Returns how many steps were taken."""
    done = 0
    async with conn.transaction():
        async with conn.cursor(row_factory=dict_row) as cur:
            await cur.execute(
                """SELECT * FROM work_orders WHERE next_escalation_at <= %s
                     AND state NOT IN ('on_hold', 'resolved', 'closed', 'cancelled')
                   ORDER BY next_escalation_at LIMIT %s FOR UPDATE SKIP LOCKED""",
                (now, limit),
            )
            rows = await cur.fetchall()
        for wo in rows:
            try:
                async with conn.transaction():  # a savepoint: one broken order must not stop the others
                    await escalate_one(conn, policy, wo, now)
                    done += 1
            except psycopg.Error as exc:
                log.error("work order %s: escalation failed: %s", wo["id"], exc)
    return done


class EscalationTicker:
    """Cloud-service component: every ``interval`` seconds, escalate what is due."""

    name = "escalation-ticker"

    def __init__(self, policy: Policy, clock: Clock, interval: float = 5.0) -> None:
        self.policy = policy
        self.clock = clock
        self.interval = interval
        self.steps = 0
        self.errors = 0

    async def tick(self, pool: AsyncConnectionPool[Any]) -> int:
        async with asyncio.timeout(60), pool.connection() as conn:
            steps = await escalate_due(conn, self.policy, self.clock.now())
            steps += await complaints.escalate_due(conn, self.clock.now())
            # a certificate that ran out today lowers the butler's stars today (issue 18)
            await profile.refresh_expired(conn, self.clock.now(), self.policy.stars)
        self.steps += steps
        return steps

    async def run(self, ctx: Any) -> None:
        ctx.metrics.gauge("guanjia_escalation_steps", "escalation steps taken by this process",
                          lambda: float(self.steps))
        while True:
            try:
                await self.tick(ctx.pool)
            except (psycopg.Error, TimeoutError) as exc:
                self.errors += 1
                log.warning("escalation tick failed: %s", exc)
            await asyncio.sleep(self.interval)
