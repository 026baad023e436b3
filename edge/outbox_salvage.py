"""Salvage a damaged outbox file: keep every readable message, set the file aside, report the rest.

Why: a plant-room box loses power, an SD card wears out, a disk fills mid-write — and SQLite then
says ``database disk image is malformed`` on open or, worse, halfway through a read. The agent
must neither crash-loop on that file nor silently start an empty one (that would throw away
every buffered reading *and* restart the sequence numbers the cloud deduplicates on, so new
messages would be dropped as duplicates). Instead:

* the damaged file (and its ``-wal``/``-shm``) is renamed ``<name>.corrupt-<ms>`` for forensics;
* each message is read by its own primary-key lookup, so one bad page costs only its rows;
* a new file gets the readable messages, ``next_seq`` = the old value when readable, else the
  highest salvaged seq + :data:`SEQ_JUMP` (a visible gap in the cloud, never a seq reused);
* the seqs that could not be read are stored as ranges in ``lost_seqs`` and reported by the
  caller as an ``outbox_corrupt`` event, so a reconciliation can tell reported from silent loss.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

SEQ_JUMP: Final = 1_000_000
MAX_PROBES: Final = 5_000_000

LOST_SEQS_SCHEMA = """
CREATE TABLE IF NOT EXISTS lost_seqs (
    first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL, ts_ms INTEGER NOT NULL, reason TEXT NOT NULL
);
"""


@dataclass(slots=True)
class SalvageReport:
    moved_to: Path
    salvaged: int = 0
    lost_ranges: list[tuple[int, int]] = field(default_factory=list)
    next_seq: int = 1
    next_seq_known: bool = False
    error: str = ""

    @property
    def lost_messages(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.lost_ranges)


def is_healthy(db: sqlite3.Connection) -> str | None:
    """``None`` when the file passes SQLite's quick check, else the first problem it reports."""
    try:
        rows = db.execute("PRAGMA quick_check(5)").fetchall()
    except sqlite3.DatabaseError as exc:
        return str(exc)
    problems = [str(r[0]) for r in rows if r and r[0] != "ok"]
    return "; ".join(problems) if problems else None


def _scalar(db: sqlite3.Connection, query: str) -> int | None:
    try:
        row = db.execute(query).fetchone()
    except sqlite3.DatabaseError:
        return None
    return int(row[0]) if row and row[0] is not None else None


def salvage(path: Path, schema: str, error: str) -> SalvageReport:
    """Move ``path`` aside and rebuild it from what is readable. ``schema`` creates the tables."""
    stamp = time.time_ns() // 1_000_000
    moved = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            src.rename(Path(str(moved) + suffix))
    report = SalvageReport(moved_to=moved, error=error)
    rows: list[tuple[int, str, int, int, int, bytes]] = []
    old_next: int | None = None
    lo = hi = None
    try:
        old = sqlite3.connect(f"file:{moved}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        log.error("outbox %s is unreadable (%s); starting empty", moved, exc)
        old = None
    if old is not None:
        with old:
            old_next = _scalar(old, "SELECT value FROM meta WHERE key = 'next_seq'")
            lo = _scalar(old, "SELECT MIN(seq) FROM messages")
            hi = _scalar(old, "SELECT MAX(seq) FROM messages")
            if lo is None:
                lo = 1
            if hi is None and old_next is not None:
                hi = old_next - 1
            if hi is not None and hi - lo + 1 > MAX_PROBES:
                lo = hi - MAX_PROBES + 1
            if hi is not None:
                for seq in range(lo, hi + 1):
                    try:
                        row = old.execute("SELECT seq, kind, priority, created_ms, n_items, body FROM messages"
                                          " WHERE seq = ?", (seq,)).fetchone()
                    except sqlite3.DatabaseError:
                        row = None
                        missing = True
                    else:
                        missing = False
                    if row is not None:
                        rows.append((int(row[0]), str(row[1]), int(row[2]), int(row[3]), int(row[4]),
                                     bytes(row[5])))
                    elif missing:
                        _add(report.lost_ranges, seq)
        old.close()
    # rows that were simply absent (already acked and deleted) are not losses; rows whose lookup
    # failed are. When the index itself is broken every lookup may fail: then everything between
    # the salvaged rows is counted as lost, which over- rather than under-reports.
    top = max([r[0] for r in rows], default=(hi or 0))
    report.next_seq_known = old_next is not None
    report.next_seq = old_next if old_next is not None else top + SEQ_JUMP
    report.next_seq = max(report.next_seq, top + 1)
    report.salvaged = len(rows)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.executescript(schema + LOST_SEQS_SCHEMA)
        db.execute("BEGIN")
        db.executemany("INSERT INTO messages (seq, kind, priority, created_ms, n_items, body) VALUES (?,?,?,?,?,?)",
                       rows)
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_seq', ?)", (report.next_seq,))
        db.executemany("INSERT INTO lost_seqs (first_seq, last_seq, ts_ms, reason) VALUES (?,?,?,?)",
                       [(a, b, stamp, error[:200]) for a, b in report.lost_ranges])
        db.execute("COMMIT")
    finally:
        db.close()
    log.error("outbox %s was damaged (%s): kept %d messages, lost %d (seq ranges %s), damaged file kept as %s",
              path, error, report.salvaged, report.lost_messages, report.lost_ranges[:5], moved)
    return report


def _add(ranges: list[tuple[int, int]], seq: int) -> None:
    if ranges and ranges[-1][1] == seq - 1:
        ranges[-1] = (ranges[-1][0], seq)
    else:
        ranges.append((seq, seq))
