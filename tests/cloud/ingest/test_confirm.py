"""Storage confirmations (end-to-end ack): after each commit the worker tells the gateway, on its
own ``cmd`` topic, which seqs are stored — new ones, duplicates and dead letters alike."""

from __future__ import annotations

import time

import orjson
import pytest

from cloud.ingest import consumer as consumer_module
from cloud.ingest.confirm import ConfirmQueue, Sent, confirmations
from cloud.ingest.prepare import Incoming, Prepared
from guanjia.core import wire
from tests.support.ingest import (
    CmdListener,
    publisher,
    register,
    running_worker,
    scalar,
    telemetry,
    unique,
    wait_for,
)
from tests.support.services import BrokerHandle


async def test_committed_duplicate_and_dead_batches_are_confirmed(ingest_db: str, broker: BrokerHandle) -> None:
    community, gateway = unique("c"), unique("gw")
    devices = ["a", "b"]
    register(ingest_db, community, gateway, devices)
    _, gw_url = broker.add_gateway(community, gateway)
    listener = CmdListener(gw_url, wire.topic(community, gateway, "cmd"))
    try:
        async with running_worker(ingest_db, broker.admin_url) as worker:
            topic = wire.topic(community, gateway, "telemetry")
            now = int(time.time() * 1000)
            with publisher(gw_url) as pub:
                pub.publish(topic, telemetry(community, gateway, 1, devices))
                pub.publish(topic, telemetry(community, gateway, 2, devices))

                async def first_confirmed() -> bool:
                    return {1, 2} <= set(listener.seqs())

                await wait_for(first_confirmed, what="stored confirmation of seqs 1-2")
                pub.publish(topic, telemetry(community, gateway, 1, devices))  # a duplicate (a resend)
                # an envelope that does not decode: a dead letter, still confirmed (by its seq)
                pub.publish(topic, orjson.dumps({"schema": 1, "kind": "telemetry", "gateway": gateway,
                                                 "community": community, "seq": 3, "sent_at": now,
                                                 "readings": "oops"}))
                # readings of an unknown device: stored as a dead letter inside a new batch
                pub.publish(topic, telemetry(community, gateway, 4, ["ghost"]))

            async def all_confirmed() -> bool:
                seqs = listener.seqs()
                return set(seqs) >= {1, 2, 3, 4} and seqs.count(1) >= 2

            await wait_for(all_confirmed, what="confirmations of seqs 1-4 and of the duplicate")
            assert worker.m_confirm.total() >= 1
            assert worker.m_dead.total() >= 2
        first = listener.messages[0]
        assert (first["schema"], first["kind"], first["incarnation"]) == (2, "stored", "legacy")
        assert isinstance(first["ts"], int)
    finally:
        listener.close()


def _prepared(topic: str, seq: int | None, payload: bytes = b"{}") -> Prepared:
    return Prepared(Incoming(topic, payload, 1, 1, 1, 0), "telemetry", gateway_id=1, seq=seq)


def test_confirmations_merge_ranges_per_gateway() -> None:
    assert wire.merge_seqs([5, 1, 2, 3, 9, 3, 10]) == [[1, 3], [5, 5], [9, 10]]
    t1, t2 = wire.topic("c", "g1", "telemetry"), wire.topic("c", "g2", "alarms")
    batch = [_prepared(t1, 3), _prepared(t1, 1), _prepared(t1, 2), _prepared(t2, 7),
             _prepared(wire.topic("c", "g1", "status"), None),  # status: not sequenced, no confirmation
             Prepared(Incoming(t1, b'{"seq": 8}', 1, 1, 1, 0), "dead", dead=[object()])]  # type: ignore[list-item]
    out = dict(confirmations(batch, now_ms=42))
    assert set(out) == {wire.topic("c", "g1", "cmd"), wire.topic("c", "g2", "cmd")}
    assert orjson.loads(out[wire.topic("c", "g1", "cmd")]) == {"schema": 2, "kind": "stored", "incarnation": "legacy",
                                                               "seqs": [[1, 3], [8, 8]], "ts": 42}
    assert orjson.loads(out[wire.topic("c", "g2", "cmd")])["seqs"] == [[7, 7]]


class _Client:
    """A stand-in MQTT client that takes ``room`` messages, then answers ``then``."""

    def __init__(self, room: int, then: Sent = Sent.FULL) -> None:
        self.room, self.then = room, then
        self.got: list[tuple[str, dict[str, object]]] = []

    def publish(self, topic: str, payload: bytes) -> Sent:
        if self.room <= 0:
            return self.then
        self.room -= 1
        self.got.append((topic, orjson.loads(payload)))
        return Sent.QUEUED


@pytest.mark.parametrize("then", [Sent.FULL, Sent.DOWN])
def test_confirm_queue_keeps_what_the_client_refuses_and_coalesces(then: Sent) -> None:
    t1, t2 = wire.topic("c", "g1", "telemetry"), wire.topic("c", "g2", "telemetry")
    queue = ConfirmQueue()
    assert queue.add([_prepared(t1, 1), _prepared(t1, 2), _prepared(t2, 5)]) == 3
    client = _Client(room=1, then=then)
    assert queue.flush(client.publish, 10) is then
    assert [t for t, _ in client.got] == [wire.topic("c", "g1", "cmd")]  # the oldest gateway first
    assert (queue.size, queue.stalled, queue.deferred) == (1, True, 1)
    # more commits for the waiting gateway: one message with merged ranges, not one per commit
    queue.add([_prepared(t2, 6)])
    queue.add([_prepared(t2, 7), _prepared(t2, 5)])  # 5 again (a duplicate resend): counted once
    assert queue.size == 3
    client.room = 10
    assert queue.flush(client.publish, 11, behind=True) is Sent.QUEUED
    assert client.got[1] == (wire.topic("c", "g2", "cmd"), {"schema": 2, "kind": "stored", "incarnation": "legacy",
                                                            "seqs": [[5, 7]], "ts": 11, "behind": True})
    assert (queue.size, queue.stalled, queue.sent) == (0, False, 2)


def test_confirm_queue_is_bounded() -> None:
    queue = ConfirmQueue(max_pending=3)
    t1 = wire.topic("c", "g1", "telemetry")
    queue.add([_prepared(t1, s) for s in (1, 2)])
    assert not queue.full
    queue.add([_prepared(t1, 3)])
    assert queue.full


async def test_burst_every_batch_confirmed_once_through_a_full_client_window(
        ingest_db: str, broker: BrokerHandle, monkeypatch: pytest.MonkeyPatch) -> None:
    """A burst from many gateways while the worker's MQTT client may hold only 2 unacknowledged
    confirmations: paho's queue never refuses anything silently; every seq of every gateway is
    confirmed exactly once (coalesced), and the confirmations sent while behind say so."""
    monkeypatch.setattr(consumer_module, "MAX_OUTSTANDING_PUBLISHES", 2)
    community = unique("c")
    gateways = [unique("gw") for _ in range(30)]
    devices = {gw: [f"{gw}a", f"{gw}b"] for gw in gateways}  # device codes are unique in a community
    for gw in gateways:
        register(ingest_db, community, gw, devices[gw])
    per_gateway = 20
    listener = CmdListener(broker.admin_url, f"{wire.TOPIC_ROOT}/{community}/+/cmd")
    try:
        async with running_worker(ingest_db, broker.admin_url, receive_maximum=32) as worker:
            with publisher(broker.admin_url) as pub:
                for seq in range(1, per_gateway + 1):
                    infos = [pub.client.publish(wire.topic(community, gw, "telemetry"),
                                                telemetry(community, gw, seq, devices[gw]), qos=1) for gw in gateways]
                    for info in infos:
                        info.wait_for_publish(10)
            want = {wire.topic(community, gw, "cmd"): list(range(1, per_gateway + 1)) for gw in gateways}

            async def all_confirmed() -> bool:
                got = listener.seqs_by_topic()
                return all(set(got.get(t, [])) >= set(seqs) for t, seqs in want.items())

            await wait_for(all_confirmed, timeout=60, what="confirmation of every batch")
            assert worker.consumer is not None
            assert worker.consumer.refused > 0  # the window was full at times: deferred, not dropped
            assert worker.m_confirm.get(outcome="deferred") > 0
            assert worker.confirms.size == 0
            assert worker.m_points.total() == len(gateways) * per_gateway * 2 * 3
            assert await scalar(ingest_db, "SELECT count(*) FROM dead_letters WHERE community = %s", (community,)) == 0
        got = listener.seqs_by_topic()
        assert {t: sorted(s) for t, s in got.items()} == want  # each seq exactly once
        assert any(m.get("behind") for m in listener.messages)
    finally:
        listener.close()


def test_confirm_queue_split_message_keeps_only_the_unsent_ranges() -> None:
    """More ranges than one message holds: a client full after the first message keeps exactly
    the ranges it did not take."""
    t1 = wire.topic("c", "g1", "telemetry")
    seqs = list(range(1, 2 * (wire.MAX_RANGES_PER_MESSAGE * 2 + 1), 2))  # every other seq: one range each
    queue = ConfirmQueue()
    queue.add([_prepared(t1, s) for s in seqs])
    client = _Client(room=1)
    assert queue.flush(client.publish, 1) is Sent.FULL
    assert queue.size == len(seqs) - wire.MAX_RANGES_PER_MESSAGE
    client.room = 10
    assert queue.flush(client.publish, 2) is Sent.QUEUED
    got = [s for _, doc in client.got for a, b in doc["seqs"] for s in range(a, b + 1)]  # type: ignore[attr-defined]
    assert sorted(got) == seqs
    assert len(client.got) == 3


def test_confirmation_window_merges_the_commits_inside_it() -> None:
    """At most one flush per window (times pinned): the first commit after a quiet spell is
    confirmed at once; the commits inside the window wait for its end and go out as one message
    with merged ranges; nothing pending is never due."""
    t1 = wire.topic("c", "g1", "telemetry")
    queue = ConfirmQueue(window_s=0.25)  # (binary fractions: the pinned times add up exactly)
    assert not queue.due(0.0)  # nothing pending
    assert queue.next_due(0.0) == 0.0
    queue.add([_prepared(t1, 1)])
    assert queue.due(10.0)  # the first commit: at once
    client = _Client(room=100)
    queue.flush(client.publish, 1)
    for now, seq in ((10.0625, 2), (10.125, 3), (10.1875, 4)):  # three commits inside the window
        queue.add([_prepared(t1, seq)])
        assert not queue.due(now)
    assert queue.next_due(10.1875) == 0.0625
    assert queue.due(10.25)  # the window's end
    queue.flush(client.publish, 2)
    assert [doc["seqs"] for _, doc in client.got] == [[[1, 1]], [[2, 4]]]
    queue.add([_prepared(t1, 5)])
    assert not queue.due(10.375)
    assert queue.due(10.5)  # a quiet spell longer than the window: at once again
    zero = ConfirmQueue(window_s=0.0)  # the default: after every commit …
    zero.add([_prepared(t1, 1)])
    assert zero.due(1.0)
    assert zero.due(1.0)
    assert not zero.due(1.125, behind=True)  # … but while behind at most every BEHIND_WINDOW_S
    assert zero.next_due(1.125, behind=True) == 0.125
    assert zero.due(1.25, behind=True)
