"""The ``rule-commands`` component: a raised alarm whose rule has a ``command:`` → one command.

Every ``interval`` (1 s) it reads the active alarms of the last ``window`` (10 min) that carry the
rule's command (the ``command`` label the edge sends with the alarm) and have no command yet, and
submits one per alarm through :func:`cloud.ops.fleet.commands.submit`, as ``rule:<rule id>``.

The loop guard is the alarm episode: ``device_commands.alarm_id`` is unique, so an alarm gets at
most one command whatever happens next. A reset that does not help (the drive trips again at once)
re-raises the *same* alarm within the policy's flap window, which sends nothing more; the order
stays open for a person. Only a new episode (raised after the old one cleared and the flap window
passed) may try again. Why poll and not hook the alarm processor: alarms sits below fleet in the
ops layers (and must not send commands itself), and a 1 s poll on a partial condition is nothing.

A command the cloud refuses (the profile has no such point or action, the value is out of range)
is still a row of the trail (``rejected``), so a wrong rule shows on the device page; a label that
is not a command at all, or a device the registry does not know, is logged once and skipped.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool
from pydantic import ValidationError

from cloud.ops.automation import repo
from cloud.ops.fleet.commands import submit
from cloud.ops.fleet.repo import CommandRow, device_id_of
from cloud.runtime.context import Component, ServiceContext
from guanjia.core.clock import Clock
from rules.model import RuleCommand

log = logging.getLogger(__name__)

WINDOW = dt.timedelta(minutes=10)
"""How far back an alarm still gets its command (a cloud that was down longer does not act late)."""


class RuleCommands:
    name = "rule-commands"

    def __init__(self, clock: Clock, *, interval: float = 1.0, window: dt.timedelta = WINDOW) -> None:
        self.clock = clock
        self.interval = interval
        self.window = window
        self.sent = 0
        self._skipped: set[int] = set()

    async def tick(self, pool: AsyncConnectionPool[Any]) -> list[CommandRow]:
        """One pass; the commands submitted (pending, or rejected by the cloud's check)."""
        now = self.clock.now()
        out: list[CommandRow] = []
        async with pool.connection() as conn:
            for alarm in await repo.wanting(conn, now - self.window):
                if alarm.id in self._skipped:
                    continue
                row = await self._one(conn, alarm, now)
                if row is None:
                    self._skipped.add(alarm.id)
                    continue
                out.append(row)
        self.sent += len(out)
        return out

    async def _one(self, conn: psycopg.AsyncConnection[Any], alarm: repo.WantingAlarm,
                   now: dt.datetime) -> CommandRow | None:
        try:
            command = RuleCommand.model_validate_json(alarm.command)
        except ValidationError as exc:
            log.warning("alarm %s (%s): the command label is not a command: %s", alarm.id, alarm.rule,
                        str(exc).splitlines()[0])
            return None
        target = command.device or alarm.device
        device_id = await device_id_of(conn, alarm.community, target)
        if device_id is None:
            log.warning("alarm %s (%s): command to %s/%s, which the registry does not know", alarm.id, alarm.rule,
                        alarm.community, target)
            return None
        try:
            async with conn.transaction():
                row = await submit(conn, device_id=device_id, point=command.action or command.point or "",
                                   value=command.value, issued_by=f"rule:{alarm.rule}", now=now,
                                   action=command.action is not None, alarm_id=alarm.id)
        except psycopg.errors.UniqueViolation:
            return None   # another cloud process sent it first: still one per episode
        if row is not None:
            log.info("rule %s (alarm %s): command %s to %s: %s %s", alarm.rule, alarm.id, row.command_id, target,
                     row.point, row.status)
        return row

    async def run(self, ctx: ServiceContext) -> None:
        ctx.metrics.gauge("guanjia_rule_commands", "commands raised by rules in this process",
                          lambda: float(self.sent))
        while True:
            try:
                await self.tick(ctx.pool)
            except (psycopg.Error, TimeoutError) as exc:
                log.warning("rule commands: tick failed: %s", exc)
            await asyncio.sleep(self.interval)


def components(ctx: ServiceContext) -> list[Component]:
    return [RuleCommands(ctx.clock)]
