"""Offline alarms for gateways: from the retained status / last-will (ingest sets
``gateways.online = false`` on "offline") or from a missing heartbeat (``last_seen`` too old).

The watchdog compares the registry with the current ``gateway_offline`` alarms and only sends the
*changes* through the ordinary lifecycle (so an outage is one alarm and, per the policy, one work
order; a gateway that comes back clears it). Gateways never seen yet are not alarmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection

from cloud.alarms.lifecycle import Result, apply_event
from cloud.alarms.model import AlarmEvent
from cloud.workorders.policy import Policy
from guanjia.clock import Clock, to_ms

log = logging.getLogger(__name__)

RULE: Final = "gateway_offline"

_SQL = """
SELECT c.code, g.code, g.online, g.last_seen, (a.id IS NOT NULL) AS alarmed
FROM gateways g
JOIN communities c ON c.id = g.community_id
LEFT JOIN alarms a ON a.community = c.code AND a.device = g.code AND a.rule = 'gateway_offline'
                  AND a.current AND a.active
WHERE g.last_seen IS NOT NULL
"""


def offline_event(community: str, gateway: str, state: str, now: datetime, why: str) -> AlarmEvent:
    return AlarmEvent(
        community=community, device=gateway, rule=RULE, state=state,  # type: ignore[arg-type]
        ts=to_ms(now), severity="major", message=why, work_order=True, gateway=gateway, source="system",
        device_kind="gateway",
    )


async def check_gateways(conn: AsyncConnection[Any], policy: Policy, now: datetime,
                         heartbeat_timeout: timedelta) -> list[Result]:
    cur = await conn.execute(_SQL)
    results: list[Result] = []
    for community, gateway, online, last_seen, alarmed in await cur.fetchall():
        stale = last_seen < now - heartbeat_timeout
        down = (not online) or stale
        if down and not alarmed:
            why = "gateway reported offline (last will)" if not online else (
                f"no heartbeat since {last_seen.isoformat()}")
            results.append(await apply_event(conn, policy, offline_event(community, gateway, "raise", now, why), now))
        elif not down and alarmed:
            results.append(await apply_event(conn, policy, offline_event(community, gateway, "clear", now,
                                                                         "gateway back online"), now))
    return results


class OfflineWatchdog:
    name = "offline-watchdog"

    def __init__(self, policy: Policy, clock: Clock, heartbeat_timeout: timedelta | None = None,
                 interval: float = 15.0) -> None:
        self.policy = policy
        self.clock = clock
        self.heartbeat_timeout = heartbeat_timeout or timedelta(seconds=120)
        self.interval = interval

    async def run(self, ctx: Any) -> None:
        changes = ctx.metrics.counter("guanjia_gateway_offline_changes_total", "offline alarm raises/clears")
        while True:
            try:
                async with asyncio.timeout(60), ctx.pool.connection() as conn:
                    for r in await check_gateways(conn, self.policy, self.clock.now(), self.heartbeat_timeout):
                        changes.inc(outcome=r.outcome)
            except (psycopg.Error, TimeoutError) as exc:
                log.warning("offline watchdog failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.sleep(self.interval)
