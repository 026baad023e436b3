"""Exact reconciliation of one gateway: what the edge accepted against what the database holds.

Method (documented in docs/scaling.md and SECURITY.md's neighbour, the chaos section of
``bench/chaos/__init__.py``): the edge assigns every committed wire message a sequence number at
commit time (``edge.outbox``: the row's primary key, persisted in ``meta.next_seq``), one counter
for telemetry, alarms and events. A reading is *accepted* by the edge exactly when its batch is
committed to the outbox, so after the agent has stopped:

* **expected** = seqs ``1 .. next_seq-1`` minus those still in the outbox (durable, not yet sent:
  reported as ``pending``) minus those the outbox itself reported dropped (overflow, corruption);
* **lost** = expected seqs with no ``ingest_batches`` row *of the outbox's incarnation* (the cloud
  writes that row in the same transaction as the message's readings; a wiped outbox's successor
  numbers from 1 again under a new incarnation, see docs/wire.md), counted in readings through a
  broker-side subscriber that recorded each telemetry seq's point count (a lost message it never
  saw counts as one). Seqs below ``meta.incarnation_from_seq`` (a salvage that could not read the
  old incarnation) match a row of any incarnation;
* **duplicated** = telemetry rows stored twice for the same (time, device, metric), plus raw alarm
  events stored twice for the same (gateway, seq, device, rule, ts), plus any telemetry row beyond
  the points the cloud's own batch ledger says it committed.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg


@dataclass(slots=True)
class OutboxState:
    next_seq: int = 1
    incarnation: str = "legacy"
    incarnation_from_seq: int = 0
    pending: set[int] = field(default_factory=set)
    dropped_messages: int = 0
    reported_lost: set[int] = field(default_factory=set)


def outbox_state(path: Path) -> OutboxState:
    state = OutboxState()
    if not path.exists():
        return state
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10) as db:
        meta = dict(db.execute("SELECT key, value FROM meta").fetchall())
        max_seq = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM messages").fetchone()[0])
        state.next_seq = max(int(meta.get("next_seq", 1)), max_seq + 1)
        number = int(meta.get("incarnation", 0))
        state.incarnation = f"{number:016x}" if number else "legacy"
        state.incarnation_from_seq = int(meta.get("incarnation_from_seq", 0))
        state.pending = {int(r[0]) for r in db.execute("SELECT seq FROM messages")}
        state.dropped_messages = int(meta.get("dropped_messages", 0))
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if "lost_seqs" in tables:
            for lo, hi in db.execute("SELECT first_seq, last_seq FROM lost_seqs"):
                state.reported_lost.update(range(int(lo), int(hi) + 1))
    return state


@dataclass(slots=True)
class Reconciliation:
    expected_messages: int
    stored_messages: int
    pending_messages: int
    reported_lost_messages: int
    lost_messages: int
    lost: int
    duplicated: int
    stored_points: int
    ledger_points: int
    lost_seqs: list[int]

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__slots__ if k != "lost_seqs"}
        out["lost_seqs"] = self.lost_seqs[:20]
        return out


def reconcile(database_url: str, community: str, gateway: str, outbox: Path,
              counted: dict[int, int] | None = None) -> Reconciliation:
    state = outbox_state(outbox)
    counted = counted or {}
    with psycopg.connect(database_url, connect_timeout=10) as conn:
        row = conn.execute(
            "SELECT g.id, c.id FROM gateways g JOIN communities c ON c.id = g.community_id"
            " WHERE c.code = %s AND g.code = %s", (community, gateway)).fetchone()
        if row is None:
            raise RuntimeError(f"gateway {community}/{gateway} is not registered")
        gateway_id, community_id = row
        every = [(str(inc), int(seq), str(kind), int(points)) for inc, seq, kind, points in conn.execute(
            "SELECT incarnation, seq, kind, points FROM ingest_batches WHERE gateway_id = %s", (gateway_id,))]
        batches = {seq: (kind, points) for inc, seq, kind, points in every if inc == state.incarnation}
        unnamed = {seq for _, seq, _, _ in every if seq < state.incarnation_from_seq}
        counts = conn.execute(
            "SELECT count(*), count(*) - count(DISTINCT (time, device_id, metric_id)) FROM ("
            " SELECT time, device_id, metric_id FROM telemetry UNION ALL"
            " SELECT time, device_id, metric_id FROM telemetry_text) t"
            " WHERE device_id IN (SELECT id FROM devices WHERE community_id = %s)", (community_id,)).fetchone()
        assert counts is not None
        stored, dup_rows = counts
        alarm_row = conn.execute(
            "SELECT count(*) - count(DISTINCT (seq, device_code, rule, ts, state)) FROM alarm_events"
            " WHERE gateway_id = %s", (gateway_id,)).fetchone()
        dup_alarms = alarm_row[0] if alarm_row else 0
    expected = set(range(1, state.next_seq)) - state.pending - state.reported_lost
    missing = sorted(expected - batches.keys() - unnamed)
    lost_points = sum(counted.get(seq, 1) for seq in missing)
    ledger = sum(p for _, _, kind, p in every if kind == "telemetry")  # every incarnation's rows are stored
    extra = max(0, int(stored) - ledger)
    return Reconciliation(
        expected_messages=len(expected), stored_messages=len(batches), pending_messages=len(state.pending),
        reported_lost_messages=len(state.reported_lost - batches.keys()), lost_messages=len(missing), lost=lost_points,
        duplicated=int(dup_rows) + int(dup_alarms) + max(0, extra - int(dup_rows)),
        stored_points=int(stored), ledger_points=ledger, lost_seqs=missing)
