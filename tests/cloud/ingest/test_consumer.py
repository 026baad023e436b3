"""The ingest's own MQTT v5 consumer (cloud/ingest/consumer.py) against a real Mosquitto:
Receive Maximum is the backpressure bound, acks count only on their own connection, a broker
restart mid-burst loses and duplicates nothing, refused logins and TLS failures are clear
errors, confirmations say FULL / DOWN instead of dropping. Malformed bytes and a silent broker
(which Mosquitto cannot be made to produce) come from a small fake server here."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from cloud.ingest import consumer as consumer_module
from cloud.ingest import packets
from cloud.ingest.confirm import Sent
from cloud.ingest.consumer import MqttConsumer
from cloud.ingest.mqtt import BrokerRefused
from cloud.ingest.prepare import Incoming
from cloud.ingest.worker import subscriptions
from guanjia.core import wire
from guanjia.core.clock import SystemClock
from guanjia.core.settings import MqttUrl
from guanjia.core.wire import TOPIC_ROOT
from tests.support.ingest import publisher, register, running_worker, scalar, telemetry, unique, wait_for
from tests.support.services import BrokerHandle


@contextlib.asynccontextmanager
async def consuming(url: str, *, client_id: str | None = None, group: str | None = None,
                    community: str | None = None, **options: Any) -> AsyncIterator[MqttConsumer]:
    """A consumer of the worker's subscriptions, or (``community``) of that community's telemetry only:
    the session broker carries other tests' messages too."""
    inbox: asyncio.Queue[Incoming] = asyncio.Queue()
    group = group or unique("g-")
    topics = [f"$share/{group}/{TOPIC_ROOT}/{community}/+/telemetry"] if community else subscriptions(group)
    consumer = MqttConsumer(MqttUrl.parse(url) if isinstance(url, str) else url, client_id or unique("c-"),
                            topics, inbox, asyncio.get_running_loop(),
                            clock=SystemClock(), **options)
    consumer.start()
    try:
        yield consumer
    finally:
        await consumer.stop(end_session=True)


async def _connected(consumer: MqttConsumer) -> None:
    async def up() -> bool:
        return consumer.connected.is_set()

    await wait_for(up, timeout=10, what="the consumer connected")
    await asyncio.sleep(0.1)


def _publish(url: str, community: str, gateway: str, seqs: range) -> None:
    with publisher(url) as pub:
        for seq in seqs:
            pub.publish(wire.topic(community, gateway, "telemetry"), telemetry(community, gateway, seq, ["d"]))


async def test_receive_maximum_bounds_what_the_broker_sends(broker: BrokerHandle) -> None:
    community, gateway = unique("c"), unique("gw")
    async with consuming(broker.admin_url, community=community, receive_maximum=5) as consumer:
        await _connected(consumer)
        await asyncio.to_thread(_publish, broker.admin_url, community, gateway, range(1, 31))
        await asyncio.sleep(0.5)
        assert consumer.inbox.qsize() == 5  # nothing acknowledged: the other 25 wait
        first = [consumer.inbox.get_nowait() for _ in range(5)]
        consumer.ack_many(first)

        async def ten() -> bool:
            return consumer.received >= 10

        await wait_for(ten, what="five more after five acks")
        await asyncio.sleep(0.3)
        assert consumer.received == 10


async def test_acks_count_only_on_their_own_connection(broker: BrokerHandle) -> None:
    community, gateway, client_id, group = unique("c"), unique("gw"), unique("c-"), unique("g-")
    async with consuming(broker.admin_url, client_id=client_id, group=group, community=community,
                         receive_maximum=10) as consumer:
        await _connected(consumer)
        await asyncio.to_thread(_publish, broker.admin_url, community, gateway, range(1, 4))

        async def three() -> bool:
            return consumer.inbox.qsize() >= 3

        await wait_for(three, what="three messages")
        old = [consumer.inbox.get_nowait() for _ in range(3)]
        generation = consumer.generation
        consumer.connected.clear()
        conn = consumer._conn  # cut the connection under the consumer, as a network fault does
        assert conn is not None
        conn.abort()

        async def redelivered() -> bool:
            return consumer.generation > generation and consumer.inbox.qsize() >= 3

        await wait_for(redelivered, what="the unacknowledged messages again on the new connection")
        consumer.ack_many(old)  # stale: released, not acked
        again = [consumer.inbox.get_nowait() for _ in range(3)]
        assert [m.payload for m in again] == [m.payload for m in old]
        assert {m.generation for m in again} == {consumer.generation}
        consumer.ack_many(again)
        await asyncio.sleep(0.3)
    # a new connection of the same session gets nothing: the current generation's acks counted
    async with consuming(broker.admin_url, client_id=client_id, group=group, community=community) as consumer:
        await _connected(consumer)
        await asyncio.sleep(0.5)
        assert consumer.received == 0


async def test_broker_restart_mid_burst_loses_and_duplicates_nothing(ingest_db: str, own_broker: BrokerHandle) -> None:
    community, gateway = unique("c"), unique("gw")
    devices = [f"d{i}" for i in range(10)]
    register(ingest_db, community, gateway, devices)
    topic = wire.topic(community, gateway, "telemetry")
    base = int(time.time() * 1000) - 60_000  # one reading time per message
    async with running_worker(ingest_db, own_broker.admin_url, batch_messages=5, batch_wait_s=0.01) as worker:
        with publisher(own_broker.admin_url) as pub:
            for seq in range(1, 201):
                pub.publish(topic, telemetry(community, gateway, seq, devices, ts=base + seq))
        assert worker.consumer is not None
        generation = worker.consumer.generation
        await asyncio.to_thread(own_broker.server.stop)  # saves its persistence: queued messages survive
        stored_before = await scalar(ingest_db, "SELECT count(*) FROM ingest_batches")
        await asyncio.to_thread(own_broker.server.start)

        async def back() -> bool:  # Mosquitto restores no $share subscription: it is ours to renew
            assert worker.consumer is not None
            return worker.consumer.generation > generation and worker.consumer.connected.is_set()

        await wait_for(back, what="the worker's new session")
        with publisher(own_broker.admin_url) as pub:
            for seq in range(201, 301):
                pub.publish(topic, telemetry(community, gateway, seq, devices, ts=base + seq))

        async def everything() -> bool:
            return bool(await scalar(ingest_db, "SELECT count(*) FROM ingest_batches") >= 300)

        await wait_for(everything, timeout=60, what="all 300 messages after the broker restart")
        await asyncio.sleep(0.5)
    assert stored_before < 300  # the restart did come mid-burst
    assert await scalar(ingest_db, "SELECT count(*) FROM ingest_batches") == 300
    assert await scalar(ingest_db, "SELECT count(*) FROM telemetry") == 300 * 10 * 3
    assert await scalar(ingest_db, "SELECT count(DISTINCT (device_id, metric_id, time)) FROM telemetry") == 9000


async def test_a_refused_login_is_a_clear_error_and_retried(broker: BrokerHandle) -> None:
    url = MqttUrl.parse(broker.admin_url)
    async with consuming(MqttUrl(url.host, url.port, url.username, "wrong-password")) as consumer:  # type: ignore[arg-type]

        async def refused() -> bool:
            return consumer.last_error is not None

        await wait_for(refused, what="the refusal")
        assert isinstance(consumer.last_error, BrokerRefused)
        assert consumer.last_error.code in (0x86, 0x87)
        assert "bad user name or password" in str(consumer.last_error) or "not authorized" in str(consumer.last_error)
        assert not consumer.connected.is_set()
        assert consumer.publish("guanjia/v1/c/g/cmd", b"{}") is Sent.DOWN


async def test_tls_handshake_failure_is_a_clear_error(broker: BrokerHandle) -> None:
    url = MqttUrl.parse(broker.admin_url)
    plain_port_over_tls = MqttUrl(url.host, url.port, url.username, url.password, tls=True)
    async with consuming(plain_port_over_tls) as consumer:  # type: ignore[arg-type]

        async def failed() -> bool:
            return consumer.last_error is not None

        await wait_for(failed, what="the TLS failure")
        error = consumer.last_error
        assert error is not None
        assert "TLS handshake" in str(error) or "closed the connection" in str(error)
        assert error.__cause__ is not None


async def test_confirmations_say_full_instead_of_dropping(broker: BrokerHandle,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consumer_module, "MAX_OUTSTANDING_PUBLISHES", 3)
    community, gateway = unique("c"), unique("gw")
    async with consuming(broker.admin_url) as consumer:
        await asyncio.wait_for(consumer.publishing.wait(), 10)
        cmd = wire.topic(community, gateway, "cmd")
        # one loop iteration: nothing can be PUBACKed in between
        outcomes = [consumer.publish(cmd, b'{"n": %d}' % i) for i in range(5)]
        assert outcomes == [Sent.QUEUED] * 3 + [Sent.FULL] * 2
        assert consumer.refused == 2

        async def acked() -> bool:
            return consumer.outstanding == 0

        await wait_for(acked, what="the PUBACKs of the three")
        assert consumer.completed == 3
        assert consumer.publish(cmd, b"{}") is Sent.QUEUED


@contextlib.asynccontextmanager
async def fake_broker(after_connect: bytes) -> AsyncIterator[tuple[MqttUrl, list[int]]]:
    """Answers CONNECT with CONNACK and SUBSCRIBE with SUBACK, then sends ``after_connect`` and
    stays silent; counts subscriptions (the ingest connections, not the confirmations' one)."""
    connections: list[int] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):  # one client packet per read is enough here
                if data[0] >> 4 == packets.CONNECT:
                    writer.write(b"\x20\x03\x00\x00\x00")
                elif data[0] >> 4 == packets.SUBSCRIBE:
                    connections.append(1)
                    at = 1 + next(i for i in range(1, 5) if data[i] < 0x80)  # past the remaining length
                    writer.write(b"\x90\x07" + data[at:at + 2] + b"\x00\x01\x01\x01\x01")
                    writer.write(after_connect)
        except ConnectionError:
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield MqttUrl("127.0.0.1", port), connections
    finally:
        server.close()


async def test_a_malformed_packet_is_a_clear_error_and_a_reconnect() -> None:
    async with fake_broker(b"\x36\x05\x00\x01a\x00\x01") as (url, connections), \
            consuming(url) as consumer:  # type: ignore[arg-type]

        async def twice() -> bool:
            return len(connections) >= 2

        await wait_for(twice, timeout=15, what="a reconnect after the malformed packet")
        assert isinstance(consumer.last_error, packets.PacketError)
        assert "QoS 3" in str(consumer.last_error)


async def test_a_silent_broker_is_dropped_after_one_and_a_half_keepalives() -> None:
    async with fake_broker(b"") as (url, connections), consuming(url, keepalive=1) as consumer:  # type: ignore[arg-type]
        await _connected(consumer)

        async def dropped() -> bool:
            return len(connections) >= 2

        await wait_for(dropped, timeout=15, what="a reconnect after the keep-alive ran out")
        assert "no packet from the broker" in str(consumer.last_error)
