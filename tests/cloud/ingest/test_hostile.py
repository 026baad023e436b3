"""Malformed and hostile payloads land in dead letters with a reason; the worker keeps going."""

from __future__ import annotations

import json
import time

from guanjia.core import wire
from tests.support.ingest import publisher, register, running_worker, scalar, telemetry, unique, wait_for
from tests.support.services import BrokerHandle


def _envelope(community_: str, gateway_: str, number: int, **overrides: object) -> bytes:
    doc: dict[str, object] = {"schema": 1, "kind": "telemetry", "gateway": gateway_, "community": community_,
                              "seq": number, "sent_at": int(time.time() * 1000), "readings": []}
    doc.update(overrides)
    return json.dumps(doc).encode()  # stdlib: can write ints past 64 bits, as a hostile sender might


async def test_hostile_payloads_are_dead_lettered(ingest_db: str, broker: BrokerHandle) -> None:
    community, gateway = unique("c"), unique("gw")
    register(ingest_db, community, gateway, ["d1", "d2"])
    now = int(time.time() * 1000)
    t_topic = wire.topic(community, gateway, "telemetry")
    a_topic = wire.topic(community, gateway, "alarms")
    e_topic = wire.topic(community, gateway, "events")
    reading = {"device": "d1", "ts": now, "values": {"x": 1.0}}
    cases: list[tuple[str, bytes, str]] = [
        (t_topic, b"not json at all", "bad_json"),
        (t_topic, b"", "bad_json"),
        (t_topic, bytes(range(256)) * 4, "bad_json"),
        (t_topic, b"[" * 5000 + b"]" * 5000, "bad_json"),  # nested past the parser's limit
        (t_topic, b'{"schema": 1, "readings": [{"values": {"x": NaN}}]}', "bad_json"),
        (t_topic, b'{"schema": 1, "seq": 1e999}', "bad_json"),  # Inf
        (t_topic, _envelope(community, gateway, 1, readings=[reading]) + b" " * (wire.MAX_PAYLOAD_BYTES + 10),
         "too_large"),
        (t_topic, _envelope(community, gateway, 2, schema=3), "bad_schema"),
        (t_topic, _envelope(community, gateway, 3, readings="x"), "bad_shape"),
        (t_topic, _envelope(community, gateway, 4, seq="4"), "bad_seq"),
        (t_topic, _envelope(community, gateway, 5, readings=[{**reading, "values": [1, 2]}]), "bad_shape"),
        (t_topic, _envelope(community, gateway, 6, readings=[{**reading, "device": "x'; DROP TABLE telemetry;--"}]),
         "bad_id"),
        (t_topic, _envelope(community, gateway, 7, readings=[{**reading, "values": {"x": "y" * 1000}}]),
         "bad_value"),
        (t_topic, _envelope(community, gateway, 8, readings=[{**reading, "ts": now + 365 * 86_400_000}]),
         "time_in_future"),
        (t_topic, _envelope(community, gateway, 9, readings=[{**reading, "ts": 10**30}]), "bad_time"),
        (t_topic, _envelope(community, gateway, 10, readings=[{**reading, "values": {"x": 1e300}}]),
         "value_out_of_range"),
        (t_topic, _envelope(community, gateway, 11, readings=[{**reading, "values": {"x": 10**40}}]),
         "value_out_of_range"),  # parsed as a float 1e40
        (t_topic, _envelope(community, gateway, 17, readings=[{**reading, "values": {"x": 10**400}}]), "bad_json"),
        (t_topic, _envelope(community, gateway, 12, gateway="someone-else"), "topic_mismatch"),
        (wire.topic(community, unique("ghost"), "telemetry"), _envelope(community, "ghost", 1), "unknown_gateway"),
        (a_topic, _envelope(community, gateway, 13, kind="alarms", alarms=[
            {"device": "d1", "rule": "r1", "state": "raise", "ts": now, "labels": {"k": "\x00"}}]), "bad_labels"),
        (e_topic, _envelope(community, gateway, 14, kind="events", events=[
            {"device": "d1", "type": "t", "ts": now, "data": {"deep": _nest(400)}}]), "bad_shape"),
    ]
    async with running_worker(ingest_db, broker.admin_url) as worker:
        with publisher(broker.admin_url) as pub:
            for topic, payload, _ in cases:
                pub.publish(topic, payload)
            # SQL and NUL inside strings that *are* allowed: stored verbatim (NUL removed), never executed
            pub.publish(a_topic, _envelope(community, gateway, 15, kind="alarms", alarms=[
                {"device": "d2", "rule": "r2", "state": "raise", "ts": now,
                 "message": "'); DROP TABLE alarm_events; -- \x00 end", "severity": "critical"}]))
            pub.publish(t_topic, telemetry(community, gateway, 16, ["d1", "d2"]))

        async def done() -> bool:
            return bool(worker.m_messages.total() >= len(cases) + 2)

        await wait_for(done, what="all hostile messages processed")
    reasons = await _reasons(ingest_db)
    for topic, _, reason in cases:
        assert reason in reasons, f"{reason} not dead-lettered (topic {topic}); got {reasons}"
    assert await scalar(ingest_db, "SELECT count(*) FROM telemetry") == 2 * 3
    assert await scalar(ingest_db, "SELECT message FROM alarm_events WHERE rule = 'r2'") == \
        "'); DROP TABLE alarm_events; --  end"
    big = await scalar(ingest_db, "SELECT payload_size - octet_length(payload) FROM dead_letters "
                                  "WHERE reason = 'too_large'")
    assert big > 0  # capped, true size kept


def _nest(depth: int) -> object:
    doc: object = 1
    for _ in range(depth):
        doc = {"d": doc}
    return doc


async def _reasons(url: str) -> dict[str, int]:
    import psycopg

    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT reason, count(*) FROM dead_letters GROUP BY reason")
        return {str(r): int(n) for r, n in await cur.fetchall()}
