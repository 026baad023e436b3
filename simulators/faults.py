"""Fault catalogue, active-fault records and the ground-truth label file.

Every injected fault writes JSON lines to the labels file: one when it starts (``"event": "start"``,
``end_*`` null) and one when it ends (``"event": "end"``, with both ends). Analytics and alarm
benchmarks score themselves against these lines. Times are epoch milliseconds, both simulated
(``*_sim_ms``, the device world's time) and wall clock (``*_wall_ms``, when it happened for the
edge and the cloud).
"""

from __future__ import annotations

import itertools
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import orjson

from simulators.meterbus import FLEET_FAULTS
from simulators.physics import COMM_FAULTS, FAULTS_BY_KIND

log = logging.getLogger(__name__)

ALL_FAULTS: frozenset[str] = frozenset(COMM_FAULTS | set(FLEET_FAULTS)
                                       | {f for faults in FAULTS_BY_KIND.values() for f in faults})


def faults_for(kind: str, transport: str) -> frozenset[str]:
    """Faults a device of this kind and transport can have."""
    comm = {"offline"} | ({"modbus_exception", "garbage_frames"} if transport == "modbus" else set()) \
        | ({"garbage_frames", "stream_drop"} if transport == "isapi" else set())
    if transport in ("dlt645", "cjt188"):
        comm |= set(FLEET_FAULTS)
    return FAULTS_BY_KIND.get(kind, frozenset()) | comm


_ids = itertools.count(1)


@dataclass(slots=True)
class ActiveFault:
    device: str
    fault: str
    params: dict[str, Any]
    start_sim: float
    start_wall: float
    end_sim: float | None = None
    """Scheduled end (simulated epoch seconds), None = until cleared."""
    id: int = field(default_factory=lambda: next(_ids))

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "device": self.device, "fault": self.fault, "params": self.params,
                "start_sim_ms": int(self.start_sim * 1000), "start_wall_ms": int(self.start_wall * 1000),
                "scheduled_end_sim_ms": None if self.end_sim is None else int(self.end_sim * 1000)}


class LabelWriter:
    """Appends ground-truth lines to a JSONL file (flushed per line, so a crash loses nothing)."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._file = path.open("ab")

    def _write(self, record: dict[str, Any]) -> None:
        if self._file is not None:
            self._file.write(orjson.dumps(record) + b"\n")
            self._file.flush()

    def started(self, fault: ActiveFault, kind: str) -> None:
        log.info("fault %s started on %s (id %d)", fault.fault, fault.device, fault.id)
        self._write({"event": "start", "id": fault.id, "device": fault.device, "kind": kind, "fault": fault.fault,
                     "params": fault.params, "start_sim_ms": int(fault.start_sim * 1000),
                     "start_wall_ms": int(fault.start_wall * 1000), "end_sim_ms": None, "end_wall_ms": None})

    def ended(self, fault: ActiveFault, kind: str, end_sim: float, reason: str) -> None:
        log.info("fault %s ended on %s (id %d, %s)", fault.fault, fault.device, fault.id, reason)
        self._write({"event": "end", "id": fault.id, "device": fault.device, "kind": kind, "fault": fault.fault,
                     "params": fault.params, "start_sim_ms": int(fault.start_sim * 1000),
                     "start_wall_ms": int(fault.start_wall * 1000), "end_sim_ms": int(end_sim * 1000),
                     "end_wall_ms": int(time.time() * 1000), "ended_by": reason})

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
