"""Helpers of the ingest tests: an in-process worker, a QoS 1 publisher, a gateway's command
listener, registration and telemetry builders, polling."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from cloud.db.pool import open_pool
from cloud.ingest.worker import IngestWorker, WorkerOptions
from cloud.registry import store
from cloud.runtime.hooks import IngestHooks
from guanjia.core import wire
from guanjia.core.clock import SystemClock
from guanjia.core.settings import MqttUrl


def unique(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def register(url: str, community: str, gateway: str, devices: list[str], *, trusted: bool = False,
             auto_register: bool = False) -> int:
    with psycopg.connect(url) as conn:
        gid = store.add_gateway(conn, community, gateway, trusted=trusted, auto_register=auto_register)
        if devices:
            store.add_devices_bulk(conn, community, gateway, devices)
    return gid


def telemetry(community: str, gateway: str, seq: int, devices: list[str], *, ts: int | None = None,
              metrics: int = 3, sent_at: int | None = None) -> bytes:
    now = ts if ts is not None else int(time.time() * 1000)
    readings = [{"device": d, "ts": now, "values": {f"m{k}": float(seq * 10 + k) for k in range(metrics)}}
                for d in devices]
    return wire.encode("telemetry", gateway=gateway, community=community, seq=seq,
                       sent_at=sent_at or int(time.time() * 1000), items=readings)


class Publisher:
    """A synchronous QoS 1 publisher (paho, threaded) that waits for each PUBACK."""

    def __init__(self, url: str, client_id: str | None = None) -> None:
        target = MqttUrl.parse(url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id or unique("pub-"),
                                  protocol=mqtt.MQTTv5)
        if target.username:
            self.client.username_pw_set(target.username, target.password)
        self.client.connect(target.host, target.port, 30)
        self.client.loop_start()

    def publish(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> mqtt.MQTTMessageInfo:
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(10)
        return info

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def publisher(url: str, client_id: str | None = None) -> Any:
    pub = Publisher(url, client_id)
    try:
        yield pub
    finally:
        pub.close()


@contextlib.asynccontextmanager
async def running_worker(db_url: str, mqtt_url: str, *, group: str | None = None,
                         client_id: str | None = None, hooks: IngestHooks | None = None,
                         **options: Any) -> AsyncIterator[IngestWorker]:
    async with open_pool(db_url, max_size=4) as pool:
        opts = WorkerOptions(client_id=client_id or unique("w-"), group=group or unique("g-"), **options)
        worker = IngestWorker(pool, MqttUrl.parse(mqtt_url), options=opts, hooks=hooks, clock=SystemClock())
        task = asyncio.create_task(worker.run())
        try:
            deadline = time.monotonic() + 10
            while (worker.consumer is None or not worker.consumer.connected.is_set()) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.2)  # SUBACK
            yield worker
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def wait_for(check: Callable[[], Awaitable[bool]], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


async def scalar(url: str, query: str, params: Any = None) -> Any:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
    return None if row is None else row[0]


class CmdListener:
    """The gateway's side: subscribed to its own ``cmd`` topic with the gateway's credentials."""

    def __init__(self, url: str, cmd_topic: str) -> None:
        target = MqttUrl.parse(url)
        self.messages: list[dict[str, Any]] = []
        self.topics: list[str] = []
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("gwcmd-"), protocol=mqtt.MQTTv5)
        self.client.username_pw_set(target.username, target.password)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.connect(target.host, target.port, 30)
        self.client.subscribe(cmd_topic, qos=1)
        self.client.loop_start()
        assert self._subscribed.wait(10)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        with self._lock:
            self.messages.append(orjson.loads(message.payload))
            self.topics.append(message.topic)

    def seqs_by_topic(self) -> dict[str, list[int]]:
        """Every confirmed seq per ``cmd`` topic, in arrival order (repeats kept)."""
        out: dict[str, list[int]] = {}
        with self._lock:
            for t, m in zip(self.topics, self.messages, strict=True):
                out.setdefault(t, []).extend(s for a, b in m["seqs"] for s in range(a, b + 1))
        return out

    def seqs(self) -> list[int]:
        with self._lock:
            return [s for m in self.messages for a, b in m["seqs"] for s in range(a, b + 1)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
