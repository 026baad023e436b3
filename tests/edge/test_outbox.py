"""The durable outbox: seq assignment, persistence, priorities, acks and the disk-limit policy."""

from __future__ import annotations

import asyncio
import random
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

import orjson

from edge.outbox import Outbox, read_stats
from guanjia.core.clock import ManualClock
from guanjia.core.wire import parse_stored


def reading(device: str, ts: int, pad: int = 0) -> dict[str, object]:
    return {"device": device, "ts": ts, "values": {"v": ts, "pad": "x" * pad}, "quality": "good"}


async def test_seq_survives_restart_and_acks_delete(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    async with Outbox(path, gateway="gw", batch_max_items=10) as box:
        for i in range(25):
            box.add_reading(reading("d1", i))
        await box.flush()
        assert box.last_seq == 3  # 10 + 10 + 5
        msgs = await box.fetch(2, 0)
        assert [m.seq for m in msgs] == [1, 2, 3]
        assert [m.n_items for m in msgs] == [10, 10, 5]
        assert orjson.loads(msgs[0].body)[0]["ts"] == 0
        box.ack(1)
        await box.flush()
        assert box.stats()["telemetry_messages"] == 2
    async with Outbox(path, gateway="gw") as box:
        assert [m.seq for m in await box.fetch(2, 0)] == [2, 3]
        box.ack(2)
        box.ack(3)
        await box.flush()
        assert box.depth() == 0
    # an empty table must not restart the sequence
    async with Outbox(path, gateway="gw") as box:
        box.add_reading(reading("d1", 99))
        await box.flush()
        assert box.last_seq == 4
    assert read_stats(path)["meta"]["next_seq"] == 5


async def test_alarms_are_separate_priority(tmp_path: Path) -> None:
    async with Outbox(tmp_path / "o.db", gateway="gw") as box:
        box.add_reading(reading("d1", 1))
        box.add_alarm({"device": "d1", "rule": "r", "state": "raise", "ts": 1})
        await box.flush()
        alarms = await box.fetch(0, 0)
        telemetry = await box.fetch(2, 0)
        assert len(alarms) == 1
        assert alarms[0].kind == "alarms"
        assert len(telemetry) == 1
        # within one commit alarms get the lower seq
        assert alarms[0].seq < telemetry[0].seq


async def test_disk_limit_drops_oldest_telemetry_never_alarms(tmp_path: Path) -> None:
    limit = 1024 * 1024
    async with Outbox(tmp_path / "o.db", gateway="gw", max_bytes=limit, batch_max_items=10) as box:
        for i in range(50):
            box.add_alarm({"device": "d1", "rule": f"r{i}", "state": "raise", "ts": i})
        await box.flush()
        for i in range(3000):
            box.add_reading(reading("d1", i, pad=400))
            if i % 100 == 99:
                await box.flush()
        await box.flush()
        stats = box.stats()
        assert stats["bytes"] <= limit
        assert stats["dropped_readings"] > 0
        assert stats["alarms_items"] >= 50  # every alarm is kept (+ the overflow alarm itself)
        telemetry = await box.fetch(2, 0, limit=1000)
        first_ts = orjson.loads(telemetry[0].body)[0]["ts"]
        last_ts = orjson.loads(telemetry[-1].body)[-1]["ts"]
        assert last_ts == 2999  # the newest is kept
        assert first_ts == stats["dropped_readings"]  # exactly the oldest ones went
        alarms = [a for m in await box.fetch(0, 0, limit=1000) for a in orjson.loads(m.body)]
        assert {a["rule"] for a in alarms} >= {f"r{i}" for i in range(50)} | {"outbox_overflow"}
        events = [e for m in await box.fetch(1, 0, limit=1000) for e in orjson.loads(m.body)]
        assert any(e["type"] == "outbox_dropped" for e in events)


async def test_large_batches_split_under_wire_limit(tmp_path: Path) -> None:
    async with Outbox(tmp_path / "o.db", gateway="gw", batch_max_items=5000) as box:
        for i in range(5000):
            box.add_reading(reading("d1", i, pad=300))
        await box.flush()
        msgs = await box.fetch(2, 0, limit=100)
        assert len(msgs) > 1
        assert all(len(m.body) < 1_000_000 for m in msgs)
        assert sum(m.n_items for m in msgs) == 5000


async def test_outbox_stats_cli(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from guanjia.app.cli.main import app

    async with Outbox(tmp_path / "o.db", gateway="gw") as box:
        box.add_reading(reading("d1", 1))
        box.add_alarm({"device": "d1", "rule": "r", "state": "raise", "ts": 1})
        await box.flush()
    result = CliRunner().invoke(app, ["edge", "outbox", "stats", "--path", str(tmp_path / "o.db")])
    assert result.exit_code == 0, result.output
    doc = orjson.loads(result.output)
    assert doc["kinds"]["telemetry"]["items"] == 1
    assert doc["kinds"]["alarms"]["messages"] == 1
    assert doc["meta"]["next_seq"] == 3


async def test_sent_batches_stay_until_confirmed_and_expire_for_resend(tmp_path: Path) -> None:
    """End-to-end ack: a PUBACKed batch is only *sent*; a ``stored`` range deletes it; an
    unconfirmed one comes back for a resend with the same seq and a doubled timeout."""
    async with Outbox(tmp_path / "o.db", gateway="gw", batch_max_items=1) as box:
        for i in range(5):
            box.add_reading(reading("d1", i))
        await box.flush()
        for msg in await box.fetch(2, 0):
            box.mark_sent(msg.seq, msg.priority, msg.n_items, timeout_s=0.05)
        stats = box.stats()
        assert (stats["unconfirmed_messages"], stats["unconfirmed_items"], stats["telemetry_messages"]) == (5, 5, 5)
        assert box.depth() == 5  # unconfirmed rows stay on disk (and count toward max_bytes)
        assert box.confirm([(1, 2), (4, 4)]) == 3
        await box.flush()
        assert [m.seq for m in await box.fetch(2, 0)] == [3, 5]
        assert box.unconfirmed() == 2
        assert box.expired() == []  # not yet due
        await asyncio.sleep(0.06)
        assert box.expired() == [3, 5]
        assert box.expired() == []  # handed out once until sent again
        rows = await box.fetch_seqs([3, 5])
        assert [r.seq for r in rows] == [3, 5]
        box.mark_sent(3, 2, 1, timeout_s=0.05)  # resent: the timeout doubles
        await asyncio.sleep(0.06)
        assert box.expired() == []
        # a confirmation that overtakes the PUBACK (or arrives after a restart) still deletes
        box.confirm([(5, 5)])
        await box.flush()
        assert [m.seq for m in await box.fetch(2, 0)] == [3]
        # a sent entry whose row is gone is forgotten when it is due
        box.confirm([(3, 3)])
        box.mark_sent(3, 2, 1, timeout_s=0.0)
        await box.flush()
        assert box.unconfirmed() == 0 or await box.fetch_seqs(box.expired()) == []
        assert (box.unconfirmed(), box.depth()) == (0, 0)


async def test_behind_hint_restarts_resend_timers_without_doubling(tmp_path: Path) -> None:
    """The cloud's ``behind`` hint: sent batches are not resent while it keeps confirming late;
    once hints stop, the timers run out as before (one timeout later, not doubled)."""
    async with Outbox(tmp_path / "o.db", gateway="gw", batch_max_items=1) as box:
        for i in range(3):
            box.add_reading(reading("d1", i))
        await box.flush()
        for msg in await box.fetch(2, 0):
            box.mark_sent(msg.seq, msg.priority, msg.n_items, timeout_s=0.2)
        await asyncio.sleep(0.15)
        assert box.postpone() == 3
        await asyncio.sleep(0.1)
        assert box.expired() == []  # 0.25 s after sending: would be due without the hint
        await asyncio.sleep(0.15)
        assert box.expired() == [1, 2, 3]  # no hint since: due one timeout after the hint
        assert box.postpone() == 0  # being resent: the hint does not hold them back
        assert box.postponed == 2


async def test_ingest_behind_status_holds_resends_jittered_and_capped(tmp_path: Path) -> None:
    """While an ingest's retained ``behind`` status is in force no batch is resent; held ones come
    due one jittered timeout after the status ends (not all at once), and no later than the cap
    allows however long the status stays up (time pinned with a ManualClock)."""
    clock = ManualClock()
    start = clock.now()

    def seconds() -> float:
        return (clock.now() - start).total_seconds()

    def tick(s: float) -> None:
        clock.advance(timedelta(seconds=s))

    async with Outbox(tmp_path / "o.db", gateway="gw", batch_max_items=1, monotonic=seconds,
                      rng=random.Random(7)) as box:
        for i in range(20):
            box.add_reading(reading("d1", i))
        await box.flush()
        for msg in await box.fetch(2, 0):
            box.mark_sent(msg.seq, msg.priority, msg.n_items, timeout_s=30.0)
        topic = "guanjia/v1/_cloud/ingest/w-0/behind"
        tick(10)
        box.hold(topic, 20.0)  # the status arrives; it is refreshed every 2 s while behind
        for _ in range(15):
            tick(2)
            box.hold(topic, 20.0)
            assert box.cloud_behind
            assert box.expired(hold_max_s=300.0) == []  # 40 s after sending: due, but held
        assert box.held == 20
        assert box.resends == 0
        box.release(topic)  # caught up: the held ones come due one jittered timeout after their hold
        assert not box.cloud_behind
        due_times: list[float] = []
        for _ in range(40):
            tick(1)
            due_times += [seconds()] * len(box.expired(hold_max_s=300.0))
        # held at 30 s (their deadline), re-armed 30–37.5 s later: spread, not one burst
        assert len(due_times) == 20
        assert due_times[0] >= 60
        assert due_times[-1] <= 68
        assert len(set(due_times)) >= 5
        # a status that is neither cleared nor refreshed expires on the edge's own clock
        box.hold(topic, 20.0)
        tick(21)
        assert not box.cloud_behind
        # the cap: however long the status stays up, a batch is resent once hold_max_s after its first send
        box.add_reading(reading("d1", 99))
        await box.flush()
        seq = box.last_seq
        box.mark_sent(seq, 2, 1, timeout_s=30.0)
        sent_at = seconds()
        resent_at = None
        for _ in range(20):
            box.hold(topic, 20.0)
            tick(5)
            if seq in box.expired(hold_max_s=60.0):
                resent_at = seconds() - sent_at
                break
        assert resent_at is not None
        assert 60 <= resent_at <= 70, resent_at
        assert box.held == 21


async def test_disk_limit_drop_forgets_unconfirmed(tmp_path: Path) -> None:
    async with Outbox(tmp_path / "o.db", gateway="gw", batch_max_items=1, max_bytes=3_000) as box:
        box.add_reading(reading("d1", 0, pad=1000))
        await box.flush()
        box.mark_sent(1, 2, 1, timeout_s=30)
        for i in range(1, 4):
            box.add_reading(reading("d1", i, pad=1000))
        await box.flush()
        assert box.dropped_messages >= 1
        assert box.unconfirmed() == 0  # seq 1 was the oldest telemetry: dropped, no longer tracked


def _wipe(directory: Path) -> None:
    for leftover in directory.glob("o.db*"):
        leftover.unlink()


async def test_incarnation_is_created_with_the_file_kept_and_renewed_when_wiped(tmp_path: Path) -> None:
    """Issue 22: the incarnation is random, persisted with the outbox, and a wiped outbox gets a new
    one and numbers from 1 again (the cloud deduplicates per incarnation, so nothing collides)."""
    path = tmp_path / "o.db"
    async with Outbox(path, gateway="gw") as box:
        first = box.incarnation
        assert re.fullmatch(r"[0-9a-f]{16}", first)
        box.add_reading(reading("d1", 1))
        await box.flush()
    async with Outbox(path, gateway="gw") as box:
        assert box.incarnation == first
        assert box.last_seq == 1
    _wipe(tmp_path)  # an operator deletes the run folder
    async with Outbox(path, gateway="gw") as box:
        assert box.incarnation not in (first, "legacy")
        box.add_reading(reading("d1", 2))
        await box.flush()
        assert box.last_seq == 1


async def test_file_of_an_older_agent_keeps_the_legacy_numbering(tmp_path: Path) -> None:
    """An outbox written before incarnations goes on as "legacy": its pending batches are the seqs the
    cloud already holds under that name, so a resend stays a duplicate."""
    path = tmp_path / "o.db"
    async with Outbox(path, gateway="gw") as box:
        box.add_reading(reading("d1", 1))
        await box.flush()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM meta WHERE key = 'incarnation'")
    async with Outbox(path, gateway="gw") as box:
        assert box.incarnation == "legacy"
        assert box.last_seq == 1
    async with Outbox(path, gateway="gw") as box:
        assert box.incarnation == "legacy"


async def test_confirmation_never_covers_a_seq_not_handed_out(tmp_path: Path) -> None:
    """A forged batch with a future seq is stored by the cloud and confirmed on the gateway's cmd
    topic; the real batch that later gets that seq must not be deleted by that confirmation."""
    async with Outbox(tmp_path / "o.db", gateway="gw", batch_max_items=1) as box:
        box.add_reading(reading("d1", 1))
        box.add_reading(reading("d1", 2))
        await box.flush()
        assert box.last_seq == 2
        box.confirm([(1, 1000)])  # seqs 3..1000 do not exist yet
        box.add_reading(reading("d1", 3))
        await box.flush()
        await box.flush()
        assert [m.seq for m in await box.fetch(2, 0)] == [3]


def test_stored_confirmation_of_another_incarnation_confirms_nothing() -> None:
    mine, other = "00000000000000a1", "00000000000000b2"

    def doc(**extra: object) -> bytes:
        return orjson.dumps({"schema": 2, "kind": "stored", "seqs": [[1, 3]], "ts": 0, **extra})

    assert parse_stored(doc(incarnation=mine), mine) == [(1, 3)]
    assert parse_stored(doc(incarnation=other), mine) == []
    assert parse_stored(doc(), mine) == [(1, 3)]  # a cloud older than incarnations
    assert parse_stored(b'{"kind": "cmd"}', mine) is None
