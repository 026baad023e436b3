"""End to end through a real Mosquitto and PostgreSQL: telemetry, alarms, events, status, dedupe."""

from __future__ import annotations

import asyncio
import time

import orjson

from guanjia.core import wire
from tests.support.ingest import (
    publisher,
    register,
    running_worker,
    scalar,
    telemetry,
    unique,
    wait_for,
)
from tests.support.services import BrokerHandle


async def test_telemetry_alarms_events_status_are_stored(storage_db: str, broker: BrokerHandle) -> None:
    community, gateway = unique("c"), unique("gw")
    devices = [f"dev-{i}" for i in range(5)]
    register(storage_db, community, gateway, devices)
    _, gw_url = broker.add_gateway(community, gateway)
    alarm_ids: list[int] = []
    async with running_worker(storage_db, broker.admin_url) as worker:
        async def on_alarms(ids: list[int]) -> None:
            alarm_ids.extend(ids)

        worker.hooks.on_alarms(on_alarms)
        now = int(time.time() * 1000)
        with publisher(gw_url) as pub:
            for seq in (1, 2, 3):
                pub.publish(wire.topic(community, gateway, "telemetry"), telemetry(community, gateway, seq, devices))
            pub.publish(wire.topic(community, gateway, "alarms"), wire.encode(
                "alarms", gateway=gateway, community=community, seq=4, sent_at=now, items=[
                    {"device": "dev-1", "rule": "overheat", "state": "raise", "severity": "major", "ts": now,
                     "message": "motor hot", "value": 97.5, "work_order": True, "labels": {"zone": "B1"}}]))
            pub.publish(wire.topic(community, gateway, "events"), wire.encode(
                "events", gateway=gateway, community=community, seq=5, sent_at=now, items=[
                    {"device": "dev-2", "type": "door_cycle", "ts": now, "data": {"count": 3}}]))
            pub.publish(wire.topic(community, gateway, "status"),
                        wire.encode_status(gateway, community, "online", now, {"outbox": 0}), retain=False)

        async def stored() -> bool:
            n = await scalar(storage_db, "SELECT count(*) FROM telemetry")
            a = await scalar(storage_db, "SELECT count(*) FROM device_events")
            s = await scalar(storage_db, "SELECT online FROM gateways WHERE code = %s", (gateway,))
            return bool(n == 3 * 5 * 3 and a == 1 and s)

        await wait_for(stored, what="all messages stored")
        await wait_for(lambda: asyncio.sleep(0, len(alarm_ids) == 1), what="alarm hook")
    assert await scalar(storage_db, "SELECT count(*) FROM ingest_batches") == 5
    assert await scalar(storage_db, "SELECT rule || ':' || state || ':' || severity FROM alarm_events") == \
        "overheat:raise:major"
    assert await scalar(storage_db, "SELECT labels->>'zone' FROM alarm_events") == "B1"
    assert await scalar(storage_db, "SELECT value FROM telemetry t JOIN metrics m ON m.id = t.metric_id "
                                   "JOIN devices d ON d.id = t.device_id WHERE d.code = 'dev-3' AND m.name = 'm2' "
                                   "ORDER BY value DESC LIMIT 1") == 32.0
    assert await scalar(storage_db, "SELECT gaps FROM gateway_sequence WHERE gateway = %s", (gateway,)) == 0
    assert worker.m_points.total() == 45


async def test_redelivery_is_idempotent(ingest_db: str, broker: BrokerHandle) -> None:
    community, gateway = unique("c"), unique("gw")
    devices = ["a", "b"]
    register(ingest_db, community, gateway, devices)
    async with running_worker(ingest_db, broker.admin_url) as worker:
        payload = telemetry(community, gateway, 7, devices)
        with publisher(broker.admin_url) as pub:
            for _ in range(3):  # same (gateway, seq) three times, as after reconnects
                pub.publish(wire.topic(community, gateway, "telemetry"), payload)
            pub.publish(wire.topic(community, gateway, "telemetry"), telemetry(community, gateway, 9, devices))

        async def done() -> bool:
            return bool(worker.m_messages.total() >= 4)

        await wait_for(done, what="4 messages processed")
    assert await scalar(ingest_db, "SELECT count(*) FROM telemetry") == 2 * 2 * 3
    assert worker.m_dupes.total() == 2
    assert await scalar(ingest_db, "SELECT gaps FROM gateway_sequence WHERE gateway = %s", (gateway,)) == 1


async def test_unknown_devices_auto_registered_only_for_trusted(ingest_db: str, broker: BrokerHandle) -> None:
    community = unique("c")
    trusted, untrusted = unique("gwt"), unique("gwu")
    register(ingest_db, community, trusted, [], trusted=True, auto_register=True)
    register(ingest_db, community, untrusted, [], trusted=False, auto_register=True)
    async with running_worker(ingest_db, broker.admin_url) as worker:
        with publisher(broker.admin_url) as pub:
            pub.publish(wire.topic(community, trusted, "telemetry"), telemetry(community, trusted, 1, ["new-1"]))
            pub.publish(wire.topic(community, untrusted, "telemetry"), telemetry(community, untrusted, 1, ["new-2"]))

        async def done() -> bool:
            return bool(worker.m_messages.total() >= 2)

        await wait_for(done)
    assert await scalar(ingest_db, "SELECT auto_registered FROM devices WHERE code = 'new-1'") is True
    assert await scalar(ingest_db, "SELECT count(*) FROM devices WHERE code = 'new-2'") == 0
    assert await scalar(ingest_db, "SELECT reason FROM dead_letters WHERE gateway = %s", (untrusted,)) == \
        "unknown_device"
    assert await scalar(ingest_db, "SELECT count(*) FROM telemetry") == 3
    detail = await scalar(ingest_db, "SELECT detail FROM dead_letters WHERE gateway = %s", (untrusted,))
    assert "new-2" in detail
    assert orjson.loads(await scalar(ingest_db, "SELECT payload FROM dead_letters WHERE gateway = %s",
                                     (untrusted,)))["seq"] == 1
