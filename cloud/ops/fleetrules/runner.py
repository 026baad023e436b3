"""Evaluate fleet rules on the hourly rollups and turn their transitions into alarms.

Feed: for every meter, the energy used in each closed hour, computed from ``telemetry_1h`` as the
growth of the ``energy_import`` counter (this hour's max − the previous hour's max), given to the
engine as metric ``energy_kwh_h`` — one reading per hour, timestamped at the hour's start. The
engine's baseline condition judges an hour when the next one arrives (or ``tick`` passes it),
against that meter's learned normal for the same hour of the week.

State: after each pass the engine snapshot and the last consumed hour are saved in
``fleet_rule_state`` in the same transaction as the alarms they produced. The first pass
bootstraps from up to ``BOOTSTRAP`` of history (transitions during the replay of old hours are
not alarmed: they are history, not news).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection
from psycopg.types.json import Jsonb

from cloud.ops.alarms.lifecycle import Result, apply_event
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import Policy
from guanjia.core.clock import Clock, to_ms
from rules import RuleEngine, RuleSet, load_ruleset
from rules.engine import AlarmEvent as RuleAlarm

log = logging.getLogger(__name__)

LIBRARY: Final = Path(__file__).with_name("library")
STATE_NAME: Final = "fleet"
BOOTSTRAP: Final = timedelta(weeks=5)
METRIC: Final = "energy_kwh_h"

_HOURS_SQL = """
WITH m AS (SELECT id FROM metrics WHERE name = 'energy_import'),
     h AS (
       SELECT t.bucket, t.device_id, t.max_value,
              t.max_value - lag(t.max_value) OVER (PARTITION BY t.device_id ORDER BY t.bucket) AS used,
              t.bucket - lag(t.bucket) OVER (PARTITION BY t.device_id ORDER BY t.bucket) AS step
       FROM telemetry_1h t JOIN m ON t.metric_id = m.id
       WHERE t.bucket >= %(since)s - interval '1 hour' AND t.bucket < %(until)s)
SELECT h.bucket, d.code AS device, c.code AS community, b.code AS building, h.used
FROM h JOIN devices d ON d.id = h.device_id JOIN communities c ON c.id = d.community_id
LEFT JOIN buildings b ON b.id = d.building_id
WHERE d.kind = 'meter' AND h.bucket >= %(since)s AND h.used IS NOT NULL AND h.used >= 0
  AND h.step = interval '1 hour'
ORDER BY h.bucket, d.code
"""


def fleet_ruleset(extra: list[str | Path] | None = None) -> RuleSet:
    return load_ruleset([LIBRARY, *(extra or [])])


def to_cloud(event: RuleAlarm, community: str, building: str | None) -> AlarmEvent:
    value = event.value if not isinstance(event.value, float) else round(event.value, 4)
    return AlarmEvent(
        community=community, device=event.device, rule=event.rule, state=event.state, ts=event.ts,
        severity=event.severity, message=event.message, value=value, work_order=event.work_order,
        labels=dict(event.labels), source="fleet", device_kind="meter", building=building,
    )


class FleetRules:
    """One pass = load state, feed new closed hours, tick, apply transitions, save state."""

    def __init__(self, policy: Policy, ruleset: RuleSet | None = None) -> None:
        self.policy = policy
        self.ruleset = ruleset or fleet_ruleset()

    async def run_pass(self, conn: AsyncConnection[Any], now: datetime) -> list[Result]:
        until = now.replace(minute=0, second=0, microsecond=0)  # only closed hours
        results: list[Result] = []
        async with conn.transaction():
            cur = await conn.execute(
                "SELECT last_bucket, snapshot FROM fleet_rule_state WHERE name = %s FOR UPDATE", (STATE_NAME,))
            row = await cur.fetchone()
            if row is None:
                await conn.execute("INSERT INTO fleet_rule_state (name) VALUES (%s) ON CONFLICT DO NOTHING",
                                   (STATE_NAME,))
                last, snapshot = None, {}
            else:
                last, snapshot = row
            engine = (RuleEngine.restore(self.ruleset, snapshot, stale_after_ms=None) if snapshot
                      else RuleEngine(self.ruleset, stale_after_ms=None))
            since = last + timedelta(hours=1) if last is not None else until - BOOTSTRAP
            news_from = last + timedelta(hours=1) if last is not None else until - timedelta(hours=1)
            cur = await conn.execute(_HOURS_SQL, {"since": since, "until": until})
            rows = await cur.fetchall()
            where: dict[str, tuple[str, str | None]] = {}
            newest = last
            for bucket, device, community, building, used in rows:
                where[device] = (community, building)
                events = engine.process(device, "meter", to_ms(bucket), {METRIC: float(used)})
                results += await self._apply(conn, events, where, news_from, now)
                newest = bucket if newest is None or bucket > newest else newest
            # close the last fed hour: judged once it is over (plus the engine's grace)
            results += await self._apply(conn, engine.tick(to_ms(until) + 120_000), where, news_from, now)
            await conn.execute(
                "UPDATE fleet_rule_state SET last_bucket = %s, snapshot = %s, updated_at = %s WHERE name = %s",
                (newest, Jsonb(engine.snapshot()), now, STATE_NAME))
        return results

    async def _apply(self, conn: AsyncConnection[Any], events: list[RuleAlarm],
                     where: dict[str, tuple[str, str | None]], news_from: datetime, now: datetime) -> list[Result]:
        out: list[Result] = []
        for event in events:
            if event.ts < to_ms(news_from) - 3_600_000 or event.device not in where:
                continue  # a transition of the bootstrap replay: history, not news
            community, building = where[event.device]
            out.append(await apply_event(conn, self.policy, to_cloud(event, community, building), now))
        return out


class FleetRulesComponent:
    name = "fleet-rules"

    def __init__(self, policy: Policy, clock: Clock, interval: float = 300.0,
                 extra_rules: list[str | Path] | None = None) -> None:
        self.runner = FleetRules(policy, fleet_ruleset(extra_rules))
        self.clock = clock
        self.interval = interval

    async def run(self, ctx: Any) -> None:
        alarms = ctx.metrics.counter("guanjia_fleet_rule_transitions_total", "fleet rule alarm transitions")
        while True:
            try:
                async with asyncio.timeout(600), ctx.pool.connection() as conn:
                    for r in await self.runner.run_pass(conn, self.clock.now()):
                        alarms.inc(outcome=r.outcome)
            except (psycopg.Error, TimeoutError) as exc:
                log.warning("fleet rules pass failed: %s", exc)
            await asyncio.sleep(self.interval)
