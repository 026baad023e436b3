"""Offline alarms for gateways: from the retained status / last-will (ingest sets
``gateways.online = false`` on "offline") or from a missing heartbeat (``last_seen`` too old).

The watchdog compares the registry with the current ``gateway_offline`` alarms and only sends the
*changes* through the ordinary lifecycle (so an outage is one alarm and, per the policy, one work
order; a gateway that comes back clears it). Gateways never seen yet are not alarmed.

It is also the clock of inhibition (``policy.inhibition``, see :mod:`cloud.ops.alarms.lifecycle`),
on every pass, with the injected clock's time:

* a gateway alarm still active ``grace`` after it was raised is *announced*: its one order (listing
  the devices whose communication alarms it groups) and its one notification;
* a device alarm inhibited by a gateway alarm that has been cleared for ``grace`` (the gateway is
  back and settled) and is still active becomes a normal alarm (*promoted*: its own order and
  notification per policy); one that cleared meanwhile stays recorded as inhibited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.ops.alarms.lifecycle import Result, announce, apply_event, inhibitor
from cloud.ops.alarms.uplink import SESSIONS_COLUMN, record_sessions
from cloud.ops.model.actors import Actor
from cloud.ops.model.alarms import GATEWAY_OFFLINE_RULE, AlarmEvent, zh_label
from cloud.ops.model.policy import Policy
from cloud.queries.assets import lock_device
from guanjia.core.clock import Clock, to_ms

log = logging.getLogger(__name__)

RULE: Final = GATEWAY_OFFLINE_RULE

_SQL = f"""
SELECT c.code, g.code, g.online, g.last_seen, (a.id IS NOT NULL) AS alarmed, {SESSIONS_COLUMN}
FROM gateways g
JOIN communities c ON c.id = g.community_id
LEFT JOIN alarms a ON a.community = c.code AND a.device = g.code AND a.rule = 'gateway_offline'
                  AND a.current AND a.active
WHERE g.last_seen IS NOT NULL
"""


def offline_event(community: str, gateway: str, state: str, now: datetime, why: str, why_zh: str) -> AlarmEvent:
    """The watchdog's event; ``why`` in English, ``why_zh`` in Chinese (the ``message_zh`` label)."""
    return AlarmEvent(
        community=community, device=gateway, rule=RULE, state=state,  # type: ignore[arg-type]
        ts=to_ms(now), severity="major", message=why, labels=zh_label(why_zh), work_order=True, gateway=gateway,
        source="system", device_kind="gateway",
    )


async def check_gateways(conn: AsyncConnection[Any], policy: Policy, now: datetime,
                         heartbeat_timeout: timedelta) -> list[Result]:
    cur = await conn.execute(_SQL)
    results: list[Result] = []
    for community, gateway, online, last_seen, alarmed, sessions in await cur.fetchall():
        await record_sessions(conn, community, gateway, sessions, now)  # dates a reconnect (cloud.ops.alarms.uplink)
        stale = last_seen < now - heartbeat_timeout
        down = (not online) or stale
        if down and not alarmed:
            why, why_zh = ("gateway reported offline (last will)", "网关报告离线（遗嘱消息）") if not online else (
                f"no heartbeat since {last_seen.isoformat()}", f"自 {last_seen.isoformat()} 起无心跳")
            results.append(await apply_event(
                conn, policy, offline_event(community, gateway, "raise", now, why, why_zh), now))
        elif not down and alarmed:
            results.append(await apply_event(
                conn, policy, offline_event(community, gateway, "clear", now, "gateway back online", "网关恢复在线"),
                now))
    results.extend(await announce_held(conn, policy, now))
    results.extend(await promote_inhibited(conn, policy, now))
    return results


_HELD_SQL = """
SELECT community, device, id FROM alarms
WHERE rule = %s AND current AND active AND announced_at IS NULL AND hold_until <= %s
ORDER BY id
"""

_PROMOTE_SQL = """
SELECT a.community, a.device, a.id FROM alarms a JOIN alarms g ON g.id = a.inhibited_by
WHERE a.inhibited AND a.current AND a.active
  AND NOT (g.current AND g.active) AND coalesce(g.cleared_at, g.updated_at) <= %s
ORDER BY a.id
"""


async def announce_held(conn: AsyncConnection[Any], policy: Policy, now: datetime) -> list[Result]:
    """Gateway alarms held for the grace and still active: one order, one notification each."""
    cur = await conn.execute(_HELD_SQL, (RULE, now))
    results: list[Result] = []
    for community, gateway, alarm_id in await cur.fetchall():
        async with conn.transaction():
            await lock_device(conn, community, gateway)
            row = await _locked_row(conn, alarm_id)
            if row is None or not (row["current"] and row["active"]) or row["announced_at"] is not None:
                continue  # changed meanwhile (cleared, announced by another process)
            wo_id, opened = await announce(conn, policy, row, now, Actor.system("offline-watchdog"))
            results.append(Result("announced", alarm_id, wo_id, opened))
    return results


async def promote_inhibited(conn: AsyncConnection[Any], policy: Policy, now: datetime) -> list[Result]:
    """Device alarms inhibited by a gateway alarm cleared ``grace`` ago and still active become
    normal alarms; if the gateway is down again meanwhile, they move under its new alarm."""
    cur = await conn.execute(_PROMOTE_SQL, (now - policy.inhibition.grace,))
    results: list[Result] = []
    for community, device, alarm_id in await cur.fetchall():
        async with conn.transaction():
            await lock_device(conn, community, device)
            row = await _locked_row(conn, alarm_id)
            if row is None or not (row["inhibited"] and row["current"] and row["active"]):
                continue
            if row["gateway"] is not None:
                await lock_device(conn, community, row["gateway"])
                gw = await inhibitor(conn, policy, community, row["gateway"], now)
                if gw is not None:  # down (or reconnecting) again: grouped under the new outage
                    await conn.execute("UPDATE alarms SET inhibited_by = %s WHERE id = %s", (gw["id"], alarm_id))
                    continue
            wo_id, opened = await announce(conn, policy, row, now, Actor.system("offline-watchdog"))
            results.append(Result("promoted", alarm_id, wo_id, opened))
    return results


async def _locked_row(conn: AsyncConnection[Any], alarm_id: int) -> dict[str, Any] | None:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT * FROM alarms WHERE id = %s FOR UPDATE", (alarm_id,))
        return await cur.fetchone()


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
