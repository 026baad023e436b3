"""A batch's sequence number cannot erase data (issue 14 §4) and an edge that loses its outbox loses
nothing after it (issue 22): dedupe by (gateway, incarnation, seq) *and* content, against a real
PostgreSQL and Mosquitto, the gateway's own broker account publishing."""

from __future__ import annotations

import contextlib
import datetime as dt
import sqlite3
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cloud.db.maintenance import partition_round
from cloud.db.pool import open_pool
from cloud.ingest.prepare import Incoming, Policy, Prepared
from cloud.ingest.writer import INSERT_ALARM_EVENT, incarnation_alarms, security_alarm
from cloud.queries.gateways import load_incarnations
from edge.agent import Agent
from guanjia.core import wire
from tests.support.edge.agent import agent_config
from tests.support.edge.profiles import PUMP_VALUES, TEST_PUMP
from tests.support.edge.servers import ProfileServer, Unit
from tests.support.ingest import CmdListener, publisher, register, running_worker, scalar, unique, wait_for
from tests.support.services import BrokerHandle

INC_A = "00000000000000a1"
INC_B = "00000000000000b2"


def _batch(community: str, gateway: str, seq: int, value: float, *, incarnation: str | None = INC_A,
           device: str = "d1", ts: int | None = None) -> bytes:
    readings = [{"device": device, "ts": ts or int(time.time() * 1000), "values": {"m": value}}]
    return wire.encode("telemetry", gateway=gateway, community=community, seq=seq, sent_at=int(time.time() * 1000),
                       items=readings, incarnation=incarnation)


@pytest.fixture
def ingest_db(module_db: str) -> str:
    """One database for the module: every test registers its own gateway (``unique``) and reads
    only that gateway's rows, so they need no empty database."""
    return module_db


async def _count(url: str, query: str, *params: object) -> int:
    return int(await scalar(url, query, params or None) or 0)


async def _row(url: str, query: str, *params: object) -> tuple[Any, ...]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(query, params)
        row = await cur.fetchone()
    assert row is not None
    return tuple(row)


async def test_forged_seq_is_a_conflict_both_kept_alarm_raised(ingest_db: str, broker: BrokerHandle) -> None:
    """Seen: a batch forged with the gateway's credentials under the edge's next seq made the real
    batch a "duplicate", confirmed and deleted by the edge. Now the real one is kept whole in the
    quarantine, a critical alarm (Chinese + English) goes through alarm_events, and a resend of it
    neither stores twice nor alarms twice."""
    community, gateway = unique("c"), unique("gw")
    register(ingest_db, community, gateway, ["d1"])
    _, gw_url = broker.add_gateway(community, gateway)
    topic = wire.topic(community, gateway, "telemetry")
    listener = CmdListener(gw_url, wire.topic(community, gateway, "cmd"))
    forged, real = _batch(community, gateway, 2, 666.0), _batch(community, gateway, 2, 21.5)
    try:
        async with running_worker(ingest_db, broker.admin_url) as worker:
            with publisher(gw_url) as pub:
                pub.publish(topic, _batch(community, gateway, 1, 20.0))
                pub.publish(topic, forged)  # the attacker is first
                pub.publish(topic, real)
                pub.publish(topic, real)  # the edge resends: the same conflict, counted as an attempt

                async def quarantined() -> bool:
                    return await _count(ingest_db, "SELECT coalesce(sum(attempts), 0) FROM ingest_quarantine q "
                                        "JOIN gateways g ON g.id = q.gateway_id WHERE g.code = %s", gateway) == 2
                await wait_for(quarantined, what="the real batch quarantined twice")
            assert worker.m_quarantined.total() == 2
        row = await _row(ingest_db, "SELECT q.reason, q.incarnation, q.seq, q.payload, q.attempts, "
                         "q.stored_digest IS NOT NULL AND q.stored_digest <> q.digest FROM ingest_quarantine q "
                         "JOIN gateways g ON g.id = q.gateway_id WHERE g.code = %s", gateway)
        reason, incarnation, seq, payload, attempts, differs = row
        assert (reason, incarnation, int(seq), bytes(payload), int(attempts), differs) == \
            ("seq_conflict", INC_A, 2, real, 2, True)
        # the stored batch is untouched (both kept), and exactly one batch per key
        assert await _count(ingest_db, "SELECT count(*) FROM ingest_batches b JOIN gateways g ON g.id = b.gateway_id "
                            "WHERE g.code = %s", gateway) == 2
        # one security alarm, through the ordinary alarm path, in both languages
        alarms = await _count(ingest_db, "SELECT count(*) FROM alarm_events WHERE device_code = %s AND rule = "
                              "'ingest-seq-conflict' AND state = 'raise' AND severity = 'critical'", gateway)
        assert alarms == 1
        message = await scalar(ingest_db, "SELECT message FROM alarm_events WHERE device_code = %s AND rule = "
                               "'ingest-seq-conflict'", (gateway,))
        message_zh = await scalar(ingest_db, "SELECT labels->>'message_zh' FROM alarm_events WHERE device_code = %s "
                                  "AND rule = 'ingest-seq-conflict'", (gateway,))
        assert message.startswith("Security")
        assert message_zh.startswith("安全告警")
        # what was confirmed is stored: seq 1 and 2 in ingest_batches, the real 2 in the quarantine
        assert set(listener.seqs()) == {1, 2}
        assert all(m["incarnation"] == INC_A for m in listener.messages)
    finally:
        listener.close()


async def test_seq_far_above_high_water_is_held_until_the_backlog_reaches_it(ingest_db: str,
                                                                              broker: BrokerHandle) -> None:
    """A seq past the window is quarantined, not stored, not confirmed; a legitimate edge's
    contiguous backlog raises the high-water mark and its resend is then taken."""
    community, gateway = unique("c"), unique("gw")
    register(ingest_db, community, gateway, ["d1"])
    _, gw_url = broker.add_gateway(community, gateway)
    topic = wire.topic(community, gateway, "telemetry")
    listener = CmdListener(gw_url, wire.topic(community, gateway, "cmd"))
    far = _batch(community, gateway, 150, 9.0)
    try:
        async with running_worker(ingest_db, broker.admin_url, policy=Policy(seq_window=100)) as worker:
            with publisher(gw_url) as pub:
                for seq in (1, 2, 3):
                    pub.publish(topic, _batch(community, gateway, seq, float(seq)))
                pub.publish(topic, far)
                pub.publish(topic, _batch(community, gateway, 10**15, 1.0))  # a forged absurd seq

                async def held() -> bool:
                    return await _count(ingest_db, "SELECT count(*) FROM ingest_quarantine q JOIN gateways g "
                                        "ON g.id = q.gateway_id WHERE g.code = %s AND reason = 'seq_out_of_window'",
                                        gateway) == 2
                await wait_for(held, what="two seqs held out of window")
                assert 150 not in listener.seqs()
                assert 10**15 not in listener.seqs()
                assert await _count(ingest_db, "SELECT count(*) FROM ingest_batches b JOIN gateways g "
                                    "ON g.id = b.gateway_id WHERE g.code = %s", gateway) == 3
                for seq in range(4, 61):  # the backlog, oldest first: the high-water mark reaches 60
                    pub.publish(topic, _batch(community, gateway, seq, float(seq)))

                async def caught_up() -> bool:
                    return await _count(ingest_db, "SELECT max(seq) FROM ingest_batches b JOIN gateways g "
                                        "ON g.id = b.gateway_id WHERE g.code = %s", gateway) == 60
                await wait_for(caught_up, what="backlog stored")
                pub.publish(topic, far)  # the edge's resend, now inside the window

                async def taken() -> bool:
                    return 150 in listener.seqs()
                await wait_for(taken, what="seq 150 stored and confirmed")
            assert worker.m_quarantined.total() == 2
        assert await _count(ingest_db, "SELECT count(*) FROM alarm_events WHERE device_code = %s AND rule = "
                            "'ingest-seq-out-of-window'", gateway) == 2
    finally:
        listener.close()


async def test_wiped_outbox_new_incarnation_loses_nothing(ingest_db: str, broker: BrokerHandle) -> None:
    """Issue 22: an old (schema 1, "legacy") edge stored seqs 1–5 with one gap; its outbox is wiped
    and the new one numbers from 1 again under a new incarnation → every new batch is stored (0
    lost, 0 duplicated), the old incarnation's gap is reported once, the new incarnation is an info
    alarm in the gateway's history, and the confirmations name the new incarnation only."""
    community, gateway = unique("c"), unique("gw")
    register(ingest_db, community, gateway, ["d1"])
    _, gw_url = broker.add_gateway(community, gateway)
    topic = wire.topic(community, gateway, "telemetry")
    listener = CmdListener(gw_url, wire.topic(community, gateway, "cmd"))
    base = int(time.time() * 1000) - 60_000
    try:
        async with running_worker(ingest_db, broker.admin_url):
            with publisher(gw_url) as pub:
                for seq in (1, 2, 4, 5):  # seq 3 never arrives: a gap of the old box
                    pub.publish(topic, _batch(community, gateway, seq, float(seq), incarnation=None, ts=base + seq))

                async def legacy_stored() -> bool:
                    return await _count(ingest_db, "SELECT received FROM gateway_sequence WHERE gateway = %s",
                                        gateway) == 4
                await wait_for(legacy_stored, what="legacy batches stored")
                for seq in range(1, 8):  # the new box: seqs from 1 again, other readings
                    pub.publish(topic, _batch(community, gateway, seq, 100.0 + seq, incarnation=INC_B,
                                              ts=base + 1000 + seq))
                pub.publish(topic, _batch(community, gateway, 3, 103.0, incarnation=INC_B, ts=base + 1003))  # resend

                async def all_stored() -> bool:
                    return await _count(ingest_db, "SELECT count(*) FROM telemetry t JOIN devices d "
                                        "ON d.id = t.device_id JOIN gateways g ON g.id = d.gateway_id "
                                        "WHERE g.code = %s", gateway) == 11
                await wait_for(all_stored, what="4 legacy + 7 new readings")
                await wait_for(lambda: _confirmed(listener, INC_B, set(range(1, 8))), what="new seqs confirmed")
        per = await scalar(ingest_db, "SELECT json_agg(json_build_array(s.incarnation, s.received, s.gaps) "
                           "ORDER BY s.incarnation) FROM gateway_incarnation_sequence s JOIN gateways g "
                           "ON g.id = s.gateway_id WHERE g.code = %s", (gateway,))
        assert per == [["00000000000000b2", 7, 0], ["legacy", 4, 1]]
        summary = await _row(ingest_db, "SELECT incarnation, incarnations, gaps, high_water "
                             "FROM gateway_sequence WHERE gateway = %s", gateway)
        assert summary == (INC_B, 2, 1, 7)
        assert await _count(ingest_db, "SELECT count(*) FROM ingest_quarantine q JOIN gateways g "
                            "ON g.id = q.gateway_id WHERE g.code = %s", gateway) == 0
        states = await scalar(ingest_db, "SELECT string_agg(state || ':' || severity, ',' ORDER BY ts) "
                              "FROM alarm_events WHERE device_code = %s AND rule = 'gateway-new-incarnation'",
                              (gateway,))
        assert states == "raise:info,clear:info"
        assert {m["incarnation"] for m in listener.messages} == {"legacy", INC_B}
        # the gateway page's history: both incarnations, newest first, each with its own gaps
        async with await psycopg.AsyncConnection.connect(ingest_db) as conn:
            gateway_id = int(await scalar(ingest_db, "SELECT id FROM gateways WHERE code = %s", (gateway,)))
            history = await load_incarnations(conn, gateway_id)
        assert [(h["incarnation"], h["received"], h["gaps"], h["quarantined"]) for h in history] == \
            [(INC_B, 7, 0, 0), ("legacy", 4, 1, 0)]
    finally:
        listener.close()


async def _confirmed(listener: CmdListener, incarnation: str, seqs: set[int]) -> bool:
    got = {s for m in list(listener.messages) if m["incarnation"] == incarnation for a, b in m["seqs"]
           for s in range(a, b + 1)}
    return seqs <= got



async def test_agent_restarted_with_its_outbox_deleted_loses_nothing(tmp_path: Path, ingest_db: str,
                                                                     broker: BrokerHandle) -> None:
    """Issue 22 end to end: cloud running, a real agent polling a real Modbus server; its outbox is
    deleted and the agent restarted → every new reading stored under the new incarnation, 0
    duplicates, 0 lost; the old incarnation's gap view is its own and the new incarnation is one info
    alarm. Before incarnations every batch of the new box was confirmed as a duplicate and deleted."""
    community, gateway = unique("c"), unique("gw")
    register(ingest_db, community, gateway, ["pump-0"])
    _, gw_url = broker.add_gateway(community, gateway)
    units = [Unit(1, TEST_PUMP, dict(PUMP_VALUES))]
    produced: dict[str, int] = {}
    left: dict[str, set[int]] = {}
    async with ProfileServer(units) as server, running_worker(ingest_db, broker.admin_url):
        config = agent_config(tmp_path, gw_url, community, gateway, server.port, period_s=0.05)
        for _run in range(2):
            async with Agent(config) as agent:
                incarnation = agent.outbox.incarnation

                async def stored(incarnation: str = incarnation) -> bool:
                    return await _count(ingest_db, "SELECT count(*) FROM ingest_batches b JOIN gateways g "
                                        "ON g.id = b.gateway_id WHERE g.code = %s AND b.incarnation = %s "
                                        "AND b.kind = 'telemetry'", gateway, incarnation) >= 10
                await wait_for(stored, what=f"10 telemetry batches of incarnation {incarnation}")
            produced[incarnation] = agent.outbox.last_seq
            left[incarnation] = _outbox_seqs(tmp_path / "outbox.db")
            _wipe_outbox(tmp_path)
        assert len(produced) == 2, "a wiped outbox is a new incarnation"

        async def everything() -> bool:
            for incarnation, last in produced.items():
                got = await _seqs(ingest_db, gateway, incarnation)
                if not got | left[incarnation] >= set(range(1, last + 1)):
                    return False
            return True
        await wait_for(everything, what="every batch of both incarnations stored")
    for incarnation, last in produced.items():  # 0 lost: each produced seq stored (or still on the edge)
        got = await _seqs(ingest_db, gateway, incarnation)
        assert got <= set(range(1, last + 1))
        assert got | left[incarnation] >= set(range(1, last + 1))
        assert len(left[incarnation]) <= 2  # at most the last flush at shutdown stays on the edge, unsent
    # 0 duplicates: no reading stored twice
    assert await _count(ingest_db, "SELECT count(*) - count(DISTINCT (t.time, t.device_id, t.metric_id)) "
                        "FROM telemetry t JOIN devices d ON d.id = t.device_id JOIN gateways g "
                        "ON g.id = d.gateway_id WHERE g.code = %s", gateway) == 0
    assert await _count(ingest_db, "SELECT count(*) FROM telemetry t JOIN devices d ON d.id = t.device_id "
                        "JOIN gateways g ON g.id = d.gateway_id WHERE g.code = %s", gateway) > 0
    # the gap view is per incarnation; the new one is a single event in the gateway's history
    assert await _count(ingest_db, "SELECT count(*) FROM gateway_incarnation_sequence s JOIN gateways g "
                        "ON g.id = s.gateway_id WHERE g.code = %s", gateway) == 2
    assert await _count(ingest_db, "SELECT count(*) FROM alarm_events WHERE device_code = %s AND "
                        "rule = 'gateway-new-incarnation' AND state = 'raise'", gateway) == 1
    assert await _count(ingest_db, "SELECT count(*) FROM ingest_quarantine q JOIN gateways g "
                        "ON g.id = q.gateway_id WHERE g.code = %s", gateway) == 0


async def _seqs(url: str, gateway: str, incarnation: str) -> set[int]:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute("SELECT b.seq FROM ingest_batches b JOIN gateways g ON g.id = b.gateway_id "
                                 "WHERE g.code = %s AND b.incarnation = %s", (gateway, incarnation))
        return {int(r[0]) for r in await cur.fetchall()}


def _outbox_seqs(path: Path) -> set[int]:
    with contextlib.closing(sqlite3.connect(path)) as db:
        return {int(r[0]) for r in db.execute("SELECT seq FROM messages")}


def _wipe_outbox(directory: Path) -> None:
    for leftover in directory.glob("outbox.db*"):
        leftover.unlink()


def test_cli_seq_window_default_is_the_policy_default() -> None:
    from guanjia.app.cli.cloud import SEQ_WINDOW_DEFAULT

    assert Policy().seq_window == SEQ_WINDOW_DEFAULT


async def test_retention_keeps_each_incarnations_high_water_mark(ingest_db: str) -> None:
    """Old ``ingest_batches`` rows are deleted by retention, except each incarnation's newest: the
    seq window and the dedupe of a late resend are measured from it."""
    community, gateway = unique("c"), unique("gw")
    gateway_id = register(ingest_db, community, gateway, [])
    now = dt.datetime.now(dt.UTC)
    old = now - dt.timedelta(days=400)
    async with await psycopg.AsyncConnection.connect(ingest_db) as conn:
        for incarnation, seqs in (("legacy", (1, 2, 3)), (INC_A, (1, 2))):
            for seq in seqs:
                await conn.execute("INSERT INTO ingest_batches (gateway_id, incarnation, seq, kind, items, points,"
                                   " received_at) VALUES (%s, %s, %s, 'telemetry', 1, 1, %s)",
                                   (gateway_id, incarnation, seq, old))
        await conn.commit()
    async with open_pool(ingest_db, max_size=2) as pool:
        await partition_round(pool, "plain", now)
    async with await psycopg.AsyncConnection.connect(ingest_db) as conn:
        cur = await conn.execute("SELECT incarnation, seq FROM ingest_batches WHERE gateway_id = %s ORDER BY 1, 2",
                                 (gateway_id,))
        assert await cur.fetchall() == [(INC_A, 2), ("legacy", 3)]


async def test_security_and_incarnation_alarms_go_through_the_alarm_lifecycle(ingest_db: str) -> None:
    """The rows the writer puts in ``alarm_events`` are ordinary alarm events: the alarm processor
    makes a critical ``ingest-seq-conflict`` alarm on the gateway and a cleared info alarm for a new
    incarnation, and opens no work order for either (the security desk, not a butler)."""
    from cloud.ops.alarms.processor import apply_row, fetch_pending
    from cloud.ops.model.policy import default_policy

    community, gateway = unique("c"), unique("gw")
    gateway_id = register(ingest_db, community, gateway, [])
    received = int(time.time() * 1000)
    topic = wire.topic(community, gateway, "telemetry")

    def prepared(incarnation: str, seq: int) -> Prepared:
        return Prepared(Incoming(topic, b"{}", 1, 1, 1, received), "telemetry", gateway_id=gateway_id, seq=seq,
                        incarnation=incarnation, digest=b"x" * 16)

    rows = [security_alarm(prepared(INC_A, 7), "seq_conflict", 6), *incarnation_alarms(prepared(INC_B, 1))]
    async with await psycopg.AsyncConnection.connect(ingest_db, autocommit=True) as conn:
        for row in rows:
            await conn.execute(INSERT_ALARM_EVENT, row)
        policy, now = default_policy(), dt.datetime.now(dt.UTC)
        for pending in await fetch_pending(conn, 1000):
            if pending["gateway"] == gateway:
                await apply_row(conn, policy, pending, now)
        cur = await conn.execute("SELECT rule, severity, active FROM alarms WHERE community = %s AND device = %s "
                                 "ORDER BY rule", (community, gateway))
        assert await cur.fetchall() == [("gateway-new-incarnation", "info", False),
                                        ("ingest-seq-conflict", "critical", True)]
        cur = await conn.execute("SELECT count(*) FROM work_orders w JOIN alarms a ON a.id = w.alarm_id "
                                 "WHERE a.community = %s", (community,))
        assert await cur.fetchone() == (0,)
