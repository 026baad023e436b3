"""The MQTT session of a fleet component (``command-dispatcher``, ``config-rollout``): one
connection subscribed to the gateways' topics it needs, a listener, and a ticker woken early by an
event, restarted with capped backoff when the broker or the database goes away.

Why one function for both: they follow the same rules — a clean session (what a gateway said
while the cloud was away comes back as retained ``status``), a fresh client id per process (two
clouds must not kick each other off), ``online`` forgotten on a lost connection (unknown until
the retained statuses come again), a tick that survives a database error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from typing import Any

import aiomqtt
import psycopg

from guanjia.core.backoff import Backoff
from guanjia.core.settings import MqttUrl

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 5.0

Publish = Callable[[str, bytes], Awaitable[None]]
OnMessage = Callable[[str, bytes], Awaitable[None]]
Tick = Callable[[Publish], Awaitable[None]]


async def run_session(name: str, mqtt_url: str, client_id: str, topics: Sequence[str], *, on_message: OnMessage,
                      tick: Tick, wake: asyncio.Event, tick_s: float, on_lost: Callable[[], None],
                      extra: Callable[[], Sequence[Coroutine[Any, Any, None]]] = tuple) -> None:
    """Run until cancelled: ``on_message(topic, payload)`` for every message, ``tick(publish)``
    every ``tick_s`` or when ``wake`` is set, and the ``extra`` coroutines beside them."""
    backoff = Backoff(0.5, 15.0)
    url = MqttUrl.parse(mqtt_url)
    while True:
        try:
            async with aiomqtt.Client(hostname=url.host, port=url.port, username=url.username,
                                      password=url.password, identifier=client_id, clean_session=True, keepalive=30,
                                      tls_context=ssl.create_default_context() if url.tls else None) as client:
                for one in topics:
                    await client.subscribe(one, qos=1)
                backoff.reset()
                log.info("%s connected", name)

                async def publish(topic_name: str, payload: bytes) -> None:
                    async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                        await client.publish(topic_name, payload, qos=1)

                async def listen() -> None:
                    async for message in client.messages:
                        payload = message.payload
                        await on_message(str(message.topic), payload if isinstance(payload, bytes)
                                         else str(payload).encode())

                async def ticker() -> None:
                    while True:
                        try:
                            await tick(publish)
                        except psycopg.Error as exc:
                            log.warning("%s tick failed: %s", name, exc)
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wake.wait(), tick_s)
                        wake.clear()

                async with asyncio.TaskGroup() as tg:
                    tg.create_task(listen(), name=f"{name}-listen")
                    tg.create_task(ticker(), name=f"{name}-tick")
                    for coro in extra():
                        tg.create_task(coro)
        except* (aiomqtt.MqttError, OSError, TimeoutError) as group:
            log.warning("%s: broker connection lost (%s); reconnecting", name, group.exceptions[0])
        except* psycopg.Error as group:
            log.warning("%s: database error (%s); restarting", name, group.exceptions[0])
        on_lost()
        await asyncio.sleep(backoff.next_delay())
