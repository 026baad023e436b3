"""Salvage a damaged outbox file: keep every readable message, set the file aside, report the rest.

Why: a plant-room box loses power, an SD card wears out, a disk fills mid-write — and SQLite then
says ``database disk image is malformed`` on open or, worse, halfway through a read. The agent
must neither crash-loop on that file nor silently start an empty one (that would throw away
every buffered reading *and* restart the sequence numbers the cloud deduplicates on, so new
messages would be dropped as duplicates). Instead:

* the damaged file (and its ``-wal``/``-shm``) is renamed ``<name>.corrupt-<ms>`` for forensics;
* each message is read by its own primary-key lookup, so one bad page costs only its rows;
* a new file gets the readable messages, ``next_seq`` = the old value when readable, else the
  durable reservation of the ``.seq`` sidecar (:func:`write_ceiling`), else the highest salvaged
  seq + :data:`SEQ_JUMP` (a visible gap in the cloud, never a seq reused);
* the new file keeps the old ``meta.incarnation`` when readable, else gets a new incarnation;
* the seqs that could not be read are stored as ranges in ``lost_seqs`` and reported by the
  caller as an ``outbox_corrupt`` event, so a reconciliation can tell reported from silent loss.
"""

from __future__ import annotations

import logging
import os
import secrets
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

log = logging.getLogger(__name__)

SEQ_JUMP: Final = 1_000_000
SEQ_BLOCK: Final = 1_000
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
    incarnation_kept: bool = False
    error: str = ""

    @property
    def lost_messages(self) -> int:
        return sum(hi - lo + 1 for lo, hi in self.lost_ranges)


def new_incarnation() -> int:
    """A fresh outbox incarnation: 63 random bits, never 0 (0 is the ``legacy`` numbering)."""
    return secrets.randbits(63) or 1


def incarnation_name(number: int) -> str:
    """The wire form of an incarnation (16 hex digits), ``legacy`` for 0."""
    return f"{number:016x}" if number else "legacy"


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


def sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + ".seq")


def read_ceiling(path: Path) -> int | None:
    """The reserved seq ceiling from the sidecar file (see :func:`write_ceiling`), if readable."""
    try:
        return int(sidecar_path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def write_ceiling(path: Path, ceiling: int) -> None:
    """Durably reserve seqs below ``ceiling`` (temp file, fsync, rename) before they are used.

    Written once per :data:`SEQ_BLOCK` seqs, so it costs one small fsync per thousand messages,
    and it lets a salvage whose ``meta`` table is unreadable continue *above* every seq ever
    handed out, reporting at most one block of seqs as lost that never existed.
    """
    side = sidecar_path(path)
    tmp = side.with_name(side.name + ".tmp")
    with open(tmp, "w", encoding="ascii") as fh:
        fh.write(str(ceiling))
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, side)


def _scan(old: sqlite3.Connection, rows: dict[int, tuple[int, str, int, int, int, bytes]]) -> bool:
    """Read messages in rowid order until the first damaged page; ``True`` if it got to the end."""
    try:
        for row in old.execute("SELECT seq, kind, priority, created_ms, n_items, body FROM messages"):
            rows[int(row[0])] = (int(row[0]), str(row[1]), int(row[2]), int(row[3]), int(row[4]), bytes(row[5]))
    except sqlite3.DatabaseError:
        return False
    return True


def salvage(path: Path, schema: str, error: str) -> SalvageReport:
    """Move ``path`` aside and rebuild it from what is readable. ``schema`` creates the tables."""
    stamp = time.time_ns() // 1_000_000
    ceiling = read_ceiling(path)
    moved = path.with_name(f"{path.name}.corrupt-{stamp}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(str(path) + suffix)
        if src.exists():
            src.rename(Path(str(moved) + suffix))
    report = SalvageReport(moved_to=moved, error=error)
    rows: dict[int, tuple[int, str, int, int, int, bytes]] = {}
    old_next: int | None = None
    incarnation: int | None = None
    try:
        old: sqlite3.Connection | None = sqlite3.connect(f"file:{moved}?mode=ro", uri=True)
    except sqlite3.Error as exc:
        log.error("outbox %s is unreadable (%s)", moved, exc)
        old = None
    if old is not None:
        old_next = _scalar(old, "SELECT value FROM meta WHERE key = 'next_seq'")
        incarnation = _scalar(old, "SELECT value FROM meta WHERE key = 'incarnation'")
        if incarnation is None and old_next is not None:
            incarnation = 0  # meta was readable and had no incarnation: an older agent's "legacy" file
        complete = _scan(old, rows)
        # the upper end of what may have existed: meta, else the durable reservation
        hi = (old_next - 1) if old_next is not None else (ceiling - 1 if ceiling is not None else None)
        if not complete:
            lo = max(rows, default=0) + 1
            if hi is None:
                hi = _scalar(old, "SELECT MAX(seq) FROM messages")
            if hi is not None:
                for seq in range(lo, min(hi, lo + MAX_PROBES) + 1):
                    if seq in rows:
                        continue
                    try:
                        row = old.execute("SELECT seq, kind, priority, created_ms, n_items, body FROM messages"
                                          " WHERE seq = ?", (seq,)).fetchone()
                    except sqlite3.DatabaseError:
                        _add(report.lost_ranges, seq)
                        continue
                    if row is not None:
                        rows[seq] = (int(row[0]), str(row[1]), int(row[2]), int(row[3]), int(row[4]),
                                     bytes(row[5]))
            else:
                report.lost_ranges.append((lo, lo + SEQ_JUMP - 2))
        old.close()
    else:
        lo = 1
        top_known = (old_next or ceiling or 0) - 1
        if top_known >= 1:
            report.lost_ranges.append((1, top_known))
    top = max(rows, default=0)
    report.next_seq_known = old_next is not None or ceiling is not None
    candidates = [top + 1, *(r[1] + 1 for r in report.lost_ranges)]
    if old_next is not None:
        candidates.append(old_next)
    elif ceiling is not None:
        candidates.append(ceiling)
    else:
        candidates.append(top + SEQ_JUMP)
    report.next_seq = max(candidates)
    report.salvaged = len(rows)
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.executescript(schema + LOST_SEQS_SCHEMA)
        db.execute("BEGIN")
        db.executemany("INSERT INTO messages (seq, kind, priority, created_ms, n_items, body) VALUES (?,?,?,?,?,?)",
                       sorted(rows.values()))
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('next_seq', ?)", (report.next_seq,))
        # the old incarnation when readable (the salvaged seqs are its seqs), else a new one: the cloud
        # then takes what follows as a new numbering instead of trusting seqs it cannot place
        report.incarnation_kept = incarnation is not None
        db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('incarnation', ?)",
                   (incarnation if incarnation is not None else new_incarnation(),))
        if incarnation is None:  # seqs below this one went out under an incarnation nobody can name now
            db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('incarnation_from_seq', ?)",
                       (report.next_seq,))
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
