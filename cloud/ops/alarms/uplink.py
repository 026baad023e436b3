"""Uplink sessions: a reconnect the offline watchdog did not see as an outage.

The last will and the heartbeat timeout miss a short outage: a broker restarted in 20 s publishes
no will for its clients, and 20 s is well inside a 120 s heartbeat timeout. But the edge counts its
uplink sessions and reports the count in every status message (``health.uplink.sessions``, stored
by ingest in ``gateways.status``), and publishes that status on connect, before its outbox drains.
So a changed count is a reconnect, seen either by the watchdog's pass or by the first
communication alarm the drained outbox delivers, whichever comes first (both record it in
``gateway_sessions``, so the change is dated once). The lifecycle then groups that alarm under a
short ``gateway_offline`` episode (raised and cleared at the reconnect, never announced), exactly
as after an outage the watchdog did see.

An agent's *first* session is not a reconnect (issue 24). The count is per agent process and
counts the session being opened: the status an agent publishes as its first session opens says 1,
the one it publishes after a reconnect says 2, 3, … (agents before this change said 0 in their first
status and caught up at the next heartbeat), and a restarted agent starts again from 1. So only a
count above 1 that differs from the last one seen dates a reconnect. Counting 0 → 1 as one had made
the start of every (older) agent a "reconnect" whenever the watchdog's pass (every 15 s) happened to fall
between its first status and its first heartbeat: the communication alarms raised in the next
3 minutes, a meter already silent when the agent started included, were then held for the grace
(``make chaos`` noisy_bus, one run in four). An agent restart is not an uplink reconnect either: its
outage is the will's (or its own "offline" status'), seen by the watchdog like any other, and its
alarms already raised before it are in its persisted rule state, not raised again.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg import AsyncConnection

_SESSIONS_SQL = """
SELECT CASE WHEN jsonb_typeof(g.status #> '{health,uplink,sessions}') = 'number'
            THEN (g.status #>> '{health,uplink,sessions}')::bigint END
FROM gateways g JOIN communities c ON c.id = g.community_id
WHERE c.code = %s AND g.code = %s
"""

SESSIONS_COLUMN = """CASE WHEN jsonb_typeof(g.status #> '{health,uplink,sessions}') = 'number'
                          THEN (g.status #>> '{health,uplink,sessions}')::bigint END"""
"""The session count as a column of a query over ``gateways g`` (the watchdog's)."""


async def record_sessions(conn: AsyncConnection[Any], community: str, gateway: str, sessions: int | None,
                          now: datetime) -> datetime | None:
    """Store the gateway's session count; return when it last changed to a reconnect's count
    (``None``: never seen to). A count of 0 or 1 is an agent's first session, never a reconnect."""
    if sessions is None:
        cur = await conn.execute("SELECT changed_at FROM gateway_sessions WHERE community = %s AND gateway = %s",
                                 (community, gateway))
        row = await cur.fetchone()
        return row[0] if row else None
    cur = await conn.execute(
        """INSERT INTO gateway_sessions AS s (community, gateway, sessions, changed_at) VALUES (%s, %s, %s, NULL)
           ON CONFLICT (community, gateway) DO UPDATE SET sessions = EXCLUDED.sessions,
               changed_at = CASE WHEN s.sessions <> EXCLUDED.sessions AND EXCLUDED.sessions > 1 THEN %s
                                   ELSE s.changed_at END
           RETURNING changed_at""",
        (community, gateway, sessions, now))
    row = await cur.fetchone()
    return row[0] if row else None


async def reconnected_at(conn: AsyncConnection[Any], community: str, gateway: str, now: datetime) -> datetime | None:
    """When the gateway's uplink last reconnected, as far as its status tells (``None`` when
    unknown: no registry row, no count reported, never changed)."""
    try:
        async with conn.transaction():  # savepoint: a registry schema mismatch must not abort the caller
            cur = await conn.execute(_SESSIONS_SQL, (community, gateway))
            row = await cur.fetchone()
    except psycopg.Error:
        return None
    if row is None:
        return None
    return await record_sessions(conn, community, gateway, row[0], now)
