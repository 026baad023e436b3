"""90 days of simulated history for the demo community, so the first ten minutes show real shapes.

A fresh demo had only the minutes since it started: the 30-day chart showed one point, the health
records and the analytics pump had nothing to read, the monthly report's energy was empty. This
runs, once per device, the simulators' own physics (:mod:`simulators.physics`, the models the
live Modbus/MQTT servers serve, through :func:`simulators.labelled_fleet.run_device`) for ``days``
simulated days ending at the current hour, and writes the hourly aggregates with the product's
COPY writer for rollups (:func:`cloud.analytics.replay_store.write_rollup`), the table every chart,
health record, detector and report reads (``telemetry_1h``). No row is written by hand.

Why hourly and not raw readings through the ingest: 90 days × 40 devices × ~8 metrics at the live
poll rate are tens of millions of readings the demo would spend minutes writing and rolling up,
while every consumer of history older than a day reads the hourly rollup. Why a sample per
simulated hour: the physics integrates internally, so the hourly avg/min/max keep their daily
shapes (load peaks, night valleys, pump cycling) at a quarter of the cost of 20-minute samples.

Idempotent: a device that already has hourly rollups older than a day (an earlier run, or the
pump of the bearing-wear replay) is left alone, so running the demo twice does not double the
history and never overwrites live data. Simulations run in up to two worker processes (the
physics is CPU-bound Python); each device's history is written and committed on its own.
Counters (trips, energy) start from the simulator's initial readings 90 days back; where the live
simulator starts its counters elsewhere, the rollups show a step at the seam, which the health
record treats like a counter reset.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import time
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from psycopg import AsyncConnection

if TYPE_CHECKING:
    from cloud.ops.model.policy import Policy

from cloud.analytics.frames import DAY_MS, HOUR_MS, HourlyFrame
from cloud.analytics.jobs import score
from cloud.analytics.replay_store import HistoryDevice, history_devices, write_rollup
from device_profiles.loader import builtin_profiles
from simulators.labelled_fleet import PROFILES, SAMPLED, FleetDevice, HourlyAggregates, run_device
from simulators.physics import MODELS, model_for

log = logging.getLogger(__name__)

STEP_S = 3600
"""One physics sample per simulated hour (see the module docstring)."""
EXTRA: dict[str, tuple[str, ...]] = {"meter": ("energy_total",)}
"""Kept beside what the analytics read (:data:`~simulators.labelled_fleet.SAMPLED`): the meter
counter the manager report costs. Only points the device's profile stores are written, as the
live ingest would."""


@dataclass(slots=True)
class HistoryResult:
    devices: int
    skipped: int
    rows: int
    simulate_s: float
    write_s: float


Job = tuple[str, str, tuple[str, ...], int, int]
"""device code, profile id, metrics to keep, start (ms), hours"""


def _simulate(job: Job) -> HourlyAggregates:
    """One device's history (top level: it runs in a worker process). The model is chosen from
    the device's profile exactly as the live simulators choose it (:func:`simulators.physics.model_for`)."""
    code, profile, metrics, start_ms, hours = job
    spec = builtin_profiles()[profile]
    seed = zlib.crc32(code.encode())  # the same device gets the same history on every machine
    model = model_for(code, spec, np.random.default_rng(seed), start_ms / 1000.0)
    return run_device(FleetDevice(code, spec.kind, profile, model), [], start_ms, hours, STEP_S, thresholds=False,
                      metrics=metrics)


def _job(device: HistoryDevice, start_ms: int, hours: int) -> Job | None:
    """What to simulate for ``device``, or ``None``: no shipped profile (a site's own file or an
    unknown id: no model to trust), no physics for its kind (gateways), or nothing the analytics,
    health records or reports read among the points its profile stores."""
    spec = builtin_profiles().get(device.profile_id or PROFILES.get(device.kind, ("",))[0])
    if spec is None or spec.kind not in MODELS:
        return None
    stored = {point.name for point in spec.points}
    metrics = tuple(m for m in (*SAMPLED.get(spec.kind, ()), *EXTRA.get(spec.kind, ())) if m in stored)
    return (device.code, spec.id, metrics, start_ms, hours) if metrics else None


async def seed_history(conn: AsyncConnection[Any], community: str, now: dt.datetime, *, days: int = 90,
                       workers: int | None = None, policy: Policy | None = None) -> HistoryResult:
    """Seed ``days`` of hourly history ending at the hour of ``now`` for every device of
    ``community`` that has none yet; return what was done and how long it took."""
    end_ms = int(now.timestamp() * 1000) // HOUR_MS * HOUR_MS
    start_ms = end_ms - days * DAY_MS
    devices = await history_devices(conn, community, now - dt.timedelta(days=1))
    todo = [(d, job) for d in devices if not d.has_history and (job := _job(d, start_ms, days * 24)) is not None]
    began = time.perf_counter()
    count = workers if workers is not None else min(2, os.cpu_count() or 1)
    if count > 1 and len(todo) > 1:
        with ProcessPoolExecutor(max_workers=count) as pool:
            frames = list(pool.map(_simulate, [job for _, job in todo]))
    else:
        frames = [_simulate(job) for _, job in todo]
    simulated = time.perf_counter()
    rows = 0
    for (device, _), hourly in zip(todo, frames, strict=True):
        frame = HourlyFrame(device=device.code, kind=device.kind, start_ms=hourly.start_ms, hours=hourly.hours,
                            avg=hourly.avg, min=hourly.min, max=hourly.max, community=community)
        rows += await write_rollup(conn, device.id, frame)
    if todo:  # the health records now (the service refreshes them hourly, and its first pass ran before this)
        await score(conn, now, community=community, health=True, policy=policy)
    result = HistoryResult(len(todo), len(devices) - len(todo), rows, simulated - began,
                           time.perf_counter() - simulated)
    log.info("demo history for %s: %s", community, result)
    return result
