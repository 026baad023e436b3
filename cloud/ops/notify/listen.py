"""A resilient PostgreSQL LISTEN loop: one dedicated connection, reconnect with capped backoff.

Used to wake the alarm processor (ingest NOTIFYs ``guanjia_alarm_events``), the notification
sender (``guanjia_outbox``) and the inbox hub (``guanjia_inbox``). A lost connection is not fatal:
consumers also poll on a timer, so a NOTIFY missed while reconnecting only delays work.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence

import psycopg
from psycopg import sql

from guanjia.core.backoff import Backoff

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0


async def listen_forever(
    url: str,
    channels: Sequence[str],
    on_notify: Callable[[str, str], None],
    on_connect: Callable[[], None] | None = None,
) -> None:
    """Call ``on_notify(channel, payload)`` for every notification until cancelled."""
    backoff = Backoff(0.2, 10.0)
    while True:
        try:
            async with asyncio.timeout(CONNECT_TIMEOUT_S):
                conn = await psycopg.AsyncConnection.connect(url, autocommit=True)
            async with conn:
                for channel in channels:
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
                backoff.reset()
                if on_connect is not None:
                    on_connect()  # something may have been missed while disconnected
                async for note in conn.notifies():
                    on_notify(note.channel, note.payload)
        except (psycopg.Error, OSError, TimeoutError) as exc:
            delay = backoff.next_delay()
            log.warning("LISTEN %s lost (%s); reconnecting in %.1fs", ",".join(channels), exc, delay)
            await asyncio.sleep(delay)
