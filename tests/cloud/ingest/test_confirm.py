"""Storage confirmations (end-to-end ack): after each commit the worker tells the gateway, on its
own ``cmd`` topic, which seqs are stored — new ones, duplicates and dead letters alike."""

from __future__ import annotations

import time

import orjson

from cloud.ingest.confirm import confirmations
from cloud.ingest.prepare import Incoming, Prepared
from guanjia.core import wire
from tests.support.ingest import CmdListener, publisher, register, running_worker, telemetry, unique, wait_for
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
