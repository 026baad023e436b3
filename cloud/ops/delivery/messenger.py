"""Phone messengers other than the three Chinese group robots (Telegram, json://, …) through apprise.

apprise knows 100+ services by URL. WeCom, DingTalk and Feishu robots are sent by
:mod:`cloud.ops.delivery.robots` instead (why: see there); URLs are checked when a butler's
channel is added (:mod:`cloud.ops.notify.channels`).
"""

from __future__ import annotations

import asyncio
import logging

log = logging.getLogger(__name__)


async def send_messenger(url: str, title: str, body: str, timeout: float = 20.0) -> str | None:
    """Send through apprise; None on success, else the error text (the sender retries)."""
    import apprise

    bot = apprise.Apprise()
    if not bot.add(url):
        return "apprise does not understand this URL (check the service's URL syntax)"
    try:
        async with asyncio.timeout(timeout):
            ok = await bot.async_notify(body=body, title=title)
    except TimeoutError:
        return f"timed out after {timeout:.0f}s"
    return None if ok else "apprise reported a failed delivery"
