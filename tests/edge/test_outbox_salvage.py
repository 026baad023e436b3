"""A damaged outbox file: detected on open, readable messages kept, the rest reported, seq safe."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import orjson

from edge.outbox import Outbox


def reading(device: str, ts: int) -> dict[str, object]:
    return {"device": device, "ts": ts, "values": {"v": ts, "pad": "x" * 300}, "quality": "good"}


async def _fill(path: Path, messages: int) -> None:
    async with Outbox(path, gateway="gw", batch_max_items=5) as box:
        for i in range(messages * 5):
            box.add_reading(reading("d1", i))
        await box.flush()
        assert box.last_seq == messages


def _set_aside(directory: Path) -> list[Path]:
    return list(directory.glob("o.db.corrupt-*"))


def _damage_pages(path: Path, first_page: int, count: int) -> None:
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page = int(db.execute("PRAGMA page_size").fetchone()[0])
    with open(path, "r+b") as fh:
        for p in range(first_page, first_page + count):
            fh.seek(p * page + 8)
            fh.write(os.urandom(page - 16))


async def test_corrupt_pages_keep_readable_messages_and_report_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    await _fill(path, 60)
    with sqlite3.connect(path) as db:
        incarnation = int(db.execute("SELECT value FROM meta WHERE key = 'incarnation'").fetchone()[0])
    pages = path.stat().st_size // 4096
    _damage_pages(path, pages // 2, 2)
    async with Outbox(path, gateway="gw") as box:
        report = box.salvage_report
        assert report is not None
        assert report.incarnation_kept  # meta was readable: the salvaged seqs keep their incarnation
        assert box.incarnation == f"{incarnation:016x}"
        assert report.salvaged + report.lost_messages <= 60
        assert report.salvaged > 0
        assert report.next_seq >= 61  # never reuse a seq the cloud may already hold
        kept = await box.fetch(2, 0, limit=100)
        assert len(kept) == report.salvaged
        for msg in kept:  # what is kept is intact
            assert len(orjson.loads(msg.body)) == msg.n_items
        box.add_reading(reading("d1", 10_000))
        await box.flush()
        assert box.last_seq >= 61
        events = [orjson.loads(m.body) for m in await box.fetch(1, 0)]
        corrupt = [e for batch in events for e in batch if e["type"] == "outbox_corrupt"]
        assert len(corrupt) == 1
        assert corrupt[0]["data"]["salvaged_messages"] == report.salvaged
    assert _set_aside(tmp_path), "the damaged file is kept for forensics"


async def test_garbage_file_starts_fresh_without_reusing_seq_zero(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    path.write_bytes(os.urandom(20_000))
    async with Outbox(path, gateway="gw") as box:
        assert box.salvage_report is not None
        assert box.salvage_report.salvaged == 0
        assert not box.salvage_report.incarnation_kept
        assert box.incarnation != "legacy"  # nothing readable: a new incarnation, not the old numbering
        box.add_reading(reading("d1", 1))
        await box.flush()


async def test_healthy_file_is_not_touched(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    await _fill(path, 3)
    async with Outbox(path, gateway="gw") as box:
        assert box.salvage_report is None
        assert box.depth() == 3
    assert not _set_aside(tmp_path)


async def test_truncated_file_resumes_above_every_issued_seq(tmp_path: Path) -> None:
    """The file's tail (meta included) is gone: the sidecar reservation keeps seqs monotonic and
    every message that may have been there is reported lost, none silently."""
    path = tmp_path / "o.db"
    await _fill(path, 40)
    _cut_last_third(path)
    async with Outbox(path, gateway="gw") as box:
        report = box.salvage_report
        assert report is not None
        assert report.next_seq >= 41
        kept = {m.seq for m in await box.fetch(2, 0, limit=100)}
        lost = {s for lo, hi in report.lost_ranges for s in range(lo, hi + 1)}
        assert set(range(1, 41)) <= kept | lost  # every issued seq is kept or reported
        box.add_reading(reading("d1", 1))
        await box.flush()
        assert box.last_seq >= report.next_seq


def _cut_last_third(path: Path) -> None:
    """Checkpoint, then cut the file's last third at a page boundary, as a crash on a full disk would."""
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("VACUUM")
        page = int(db.execute("PRAGMA page_size").fetchone()[0])
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.truncate(path, (path.stat().st_size // page) * 2 // 3 * page)
