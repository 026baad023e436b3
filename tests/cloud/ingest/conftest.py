"""Helpers of the ingest tests: a migrated database, an in-process worker, a QoS 1 publisher."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from cloud.db.migrate import migrate
from cloud.db.pool import open_pool
from cloud.ingest.worker import IngestWorker, WorkerOptions
from cloud.registry import store
from cloud.runtime.hooks import IngestHooks
from guanjia.core import wire
from guanjia.core.clock import SystemClock
from guanjia.core.settings import MqttUrl
from tests.conftest import PgHandle


@pytest.fixture
def ingest_db(db_url: str) -> str:
    """A database migrated in plain-PostgreSQL mode (the mode with the most code of ours)."""
    migrate(db_url, prefer_timescale=False)
    return db_url


@pytest.fixture(params=["plain", "timescale"])
def storage_db(request: pytest.FixtureRequest, pg: PgHandle, db_url: str) -> str:
    """The same test on both storage modes (TimescaleDB skipped with a reason when absent)."""
    if request.param == "timescale" and not pg.timescaledb:
        pytest.skip("TimescaleDB extension is not installed on the test server")
    migrate(db_url, prefer_timescale=request.param == "timescale")
    return db_url


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
