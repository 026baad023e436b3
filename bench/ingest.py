"""``python -m bench ingest``: publish → committed rows, end to end, against raw binary COPY.

Everything runs on this machine, in this run: a private PostgreSQL and Mosquitto (temp dir),
ingest workers as real ``guanjia cloud ingest`` processes, simulated gateways publishing
pre-encoded wire batches (1,250 readings × 4 metrics = 5,000 points per message) from this process.

Phases (same database, same ``telemetry`` table and index):

1. ``copy_points_per_s`` — the baseline: the same number of rows, pre-encoded, written with
   psycopg binary ``COPY`` in 50,000-row transactions (the ingest's batch size). Then TRUNCATE.
2. one worker process: publish N messages as fast as possible; rate = points / (last commit −
   first publish). Commit times come from ``LISTEN guanjia_ingest`` (sent at each commit).
3. a second worker process joins the shared subscription; same measurement.
4. latency at half the best rate: messages paced for a few seconds; publish → commit p50/p99.

5. the matrix (issue 21): gateways × readings per message × metrics per reading — 4×1250×4,
   100×100×20, 500×10×20, 500×10×4 — each gateway with its **own broker account and connection**
   (:mod:`bench.ingest_fleet`, one asyncio publisher process), the workers' account allowed to publish
   confirmations, so the ``stored`` path is measured too. Per shape: the same-run binary COPY
   baseline of the same rows; :data:`WARM_ROUNDS` unmeasured warm-up messages per gateway; a burst (every
   gateway's messages at once) → points/s and messages/s to the last commit,
   commit→confirmation p50/p99 and confirmations dropped (seqs never confirmed within 60 s);
   then a paced phase at 1 message/s per gateway → publish→commit and commit→confirmation
   p50/p99. "Commit" is ``ingest_batches.received_at`` (``now()``, the write transaction's
   start — a few ms before its commit, so commit→confirmation errs long).

Per burst, ``cpu_us_per_message``: CPU time of the workers, the broker, PostgreSQL and the
publishers (``/proc``) divided by the burst's messages — where the two cores went.

Per phase, ``behind_hints`` (confirmations that carried the worker's ``behind`` hint) and
``behind_statuses`` (the workers' retained ``behind`` status put up or refreshed while it ran:
whether the confirmations were merged into the wider window of a worker behind).

``BENCH_INGEST_ARGS`` (environment, for experiments): extra ``guanjia cloud ingest`` options for
the bench's workers, e.g. ``--receive-maximum 1000`` to measure an older default in the same run.

Checks in every run: points sent == points stored, duplicate rows counted (must be 0).
Top-level keys for the targets: ``points_per_s_msg200`` (500×10×20), ``messages_per_s_msg40``
(500×10×4), ``confirm_p99_ms_burst`` (worst shape), ``confirmations_dropped`` (all shapes).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import pickle
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from bench import ingest_fleet
from cloud.db import partitions
from cloud.db.migrate import migrate, storage_mode
from cloud.ingest.copy import COPY_SQL, encode_readings, stream
from cloud.registry import store
from cloud.registry.broker import BrokerAccount
from guanjia.app.stack import MosquittoServer, PostgresServer
from guanjia.core import wire
from guanjia.core.ports import free_port
from guanjia.core.settings import MqttUrl

READINGS = 1250
METRICS = 4
POINTS_PER_MESSAGE = READINGS * METRICS
GATEWAYS = 4
COMMUNITY = "bench"
GUANJIA = str(Path(sys.executable).parent / "guanjia")


class Listener(threading.Thread):
    """Records when each (gateway_id, seq) became visible (NOTIFY is delivered at commit)."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.committed: dict[tuple[int, int], float] = {}
        self.stop = threading.Event()
        self.ready = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute("LISTEN guanjia_ingest")
            self.ready.set()
            while not self.stop.is_set():
                for note in conn.notifies(timeout=0.2):
                    now = time.time()
                    for part in note.payload.split(","):
                        if ":" in part:
                            g, s = part.split(":")
                            self.committed.setdefault((int(g), int(s)), now)

    def wait_for(self, keys: list[tuple[int, int]], timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(k in self.committed for k in keys):
                return max(self.committed[k] for k in keys)
            time.sleep(0.02)
        missing = sum(1 for k in keys if k not in self.committed)
        raise RuntimeError(f"{missing} of {len(keys)} messages not committed within {timeout}s")


class Gateways:
    """The simulated gateways: ids, device codes, and a QoS 1 publisher."""

    def __init__(self, url: str, gateway_ids: dict[str, int]) -> None:
        self.ids = gateway_ids
        self.seq = dict.fromkeys(gateway_ids, 0)
        self.base_ts = int(time.time() * 1000) - 3 * 3600_000
        self.rng = np.random.default_rng(7)
        self.sent_points = 0
        self.published: dict[tuple[int, int], float] = {}
        target = MqttUrl.parse(url)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-publisher", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(target.username, target.password)
        self.client.max_inflight_messages_set(256)
        self.statuses: list[float] = []
        """When a worker's retained ``behind`` status went up or was refreshed (non-empty payloads)."""
        self.client.on_message = lambda _c, _u, m: self.statuses.append(time.time()) if m.payload else None
        self.client.on_connect = lambda c, *_: c.subscribe(wire.INGEST_STATUS_FILTER, qos=1)
        self.client.connect(target.host, target.port, 60)
        self.client.loop_start()

    def message(self, gateway: str) -> tuple[tuple[int, int], str, bytes]:
        self.seq[gateway] += 1
        seq = self.seq[gateway]
        ts = self.base_ts + seq * 1000
        values = np.round(self.rng.normal(50, 10, (READINGS, METRICS)), 3).tolist()
        readings = [{"device": f"{gateway}-d{i:04d}", "ts": ts,
                     "values": {"temp": v[0], "pressure": v[1], "current": v[2], "flow": v[3]}}
                    for i, v in enumerate(values)]
        payload = wire.encode("telemetry", gateway=gateway, community=COMMUNITY, seq=seq,
                              sent_at=int(time.time() * 1000), items=readings,
                              incarnation=f"{self.ids[gateway]:016x}")  # schema 2, as a current edge sends
        return (self.ids[gateway], seq), wire.topic(COMMUNITY, gateway, "telemetry"), payload

    def batch(self, count: int) -> list[tuple[tuple[int, int], str, bytes]]:
        names = list(self.ids)
        return [self.message(names[i % len(names)]) for i in range(count)]

    def publish(self, item: tuple[tuple[int, int], str, bytes], wait: bool = False) -> None:
        key, topic, payload = item
        if key not in self.published:
            self.sent_points += POINTS_PER_MESSAGE
        self.published.setdefault(key, time.time())
        info = self.client.publish(topic, payload, qos=1)
        if wait:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def _worker(db: str, mqtt_url: str, prefix: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GUANJIA_DATABASE_URL": db, "GUANJIA_MQTT_URL": mqtt_url, "GUANJIA_MODE": "test"}
    with log.open("ab") as fh:
        # each process its own /metrics port (the default one would collide between the two)
        return subprocess.Popen([GUANJIA, "cloud", "ingest", "--client-id-prefix", prefix, "--group", "bench",
                                 "--metrics-port", str(free_port()), "--processes", "1",
                                 *os.environ.get("BENCH_INGEST_ARGS", "").split()],
                                env=env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _wait_log(log: Path, needle: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and needle in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{needle!r} not in {log} after {timeout}s")


async def _partitions(db: str) -> None:
    async with await psycopg.AsyncConnection.connect(db) as conn, conn.transaction():
        await partitions.ensure_ahead(conn, dt.datetime.now(dt.UTC), ahead_days=1, behind_days=1)


def _copy_baseline(db: str, device_ids: list[int], metric_ids: list[int], points: int,
                   metrics: int = METRICS) -> float:
    """Binary COPY of the same rows the ingest writes (one per reading of ``metrics`` metrics),
    50,000 points per transaction — the ingest's batch size."""
    chunk = 50_000
    base = int(time.time() * 1000) - 6 * 3600_000
    chunks: list[bytes] = []
    rows_per_chunk = chunk // metrics
    for start in range(0, points // metrics, rows_per_chunk):
        idx = np.arange(start, min(points // metrics, start + rows_per_chunk))
        ts = (base + (idx // len(device_ids)) * 1000).astype(np.int64)
        dev = np.array(device_ids, dtype=np.int32)[idx % len(device_ids)]
        met = np.tile(np.array(metric_ids, dtype=np.int16), (len(idx), 1))
        val = np.round(np.random.default_rng(start).normal(50, 10, (len(idx), metrics)), 3)
        chunks.append(stream([encode_readings(ts, dev, np.zeros(len(idx), np.int16), met, val)]))
    with psycopg.connect(db) as conn:
        started = time.perf_counter()
        for data in chunks:
            with conn.cursor() as cur, cur.copy(COPY_SQL) as copy:
                copy.write(data)
            conn.commit()
        elapsed = time.perf_counter() - started
        conn.execute("TRUNCATE telemetry_readings")
        conn.execute("DELETE FROM rollup_invalidations")
        conn.commit()
    return points / elapsed


def _throughput(gws: Gateways, listener: Listener, messages: int) -> float:
    items = gws.batch(messages)
    started = time.time()
    for item in items:
        gws.publish(item)
    finished = listener.wait_for([k for k, _, _ in items], timeout=600)
    return messages * POINTS_PER_MESSAGE / (finished - started)


def _latency(gws: Gateways, listener: Listener, rate_points: float, seconds: float) -> tuple[float, float]:
    per_s = max(1.0, rate_points / POINTS_PER_MESSAGE)
    count = max(10, int(per_s * seconds))
    items = gws.batch(count)
    start = time.monotonic()
    publish_times: dict[tuple[int, int], float] = {}
    for i, item in enumerate(items):
        delay = start + i / per_s - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        publish_times[item[0]] = time.time()
        gws.publish(item)
    listener.wait_for(list(publish_times), timeout=300)
    lat = np.array([(listener.committed[k] - t) * 1000 for k, t in publish_times.items()])
    return float(np.percentile(lat, 50)), float(np.percentile(lat, 99))


WARM_ROUNDS = 4
"""Warm-up messages per gateway and shape. Why four and not one: the workers share the
subscription, so one message reached one of the two workers and the other met half of the
gateways for the first time during the burst — registry lookups in the measured burst
(py-spy, issue 21: ~10 % of a worker). With four, a worker misses a gateway rarely."""
MATRIX = ((4, 1250, 4), (100, 100, 20), (500, 10, 20), (500, 10, 4))
"""(gateways, readings per message, metrics per reading)."""
FLEET_PROCESSES = 1


def _shape_name(shape: tuple[int, int, int]) -> str:
    return "x".join(map(str, shape))


def _shape_gateways(shape: tuple[int, int, int]) -> list[str]:
    return [f"m{_shape_name(shape)}g{g}" for g in range(shape[0])]


def _shape_accounts() -> list[BrokerAccount]:
    """Every matrix gateway's own account (set before the broker starts: one reload)."""
    return [BrokerAccount.gateway(COMMUNITY, gw, password=f"pw-{gw}") for shape in MATRIX
            for gw in _shape_gateways(shape)]


def _matrix_rounds(shape: tuple[int, int, int], quick: bool) -> tuple[int, int]:
    """(burst messages, paced seconds) per gateway: the burst is ~2 M points or 20,000 messages."""
    gateways, readings, metrics = shape
    burst = max(2, min(20_000 // gateways, 2_000_000 // (gateways * readings * metrics)))
    if quick:
        burst = max(2, burst // 8)
    return burst, (4 if quick else 12)


def _fleet(root: Path, broker: MosquittoServer, shape: tuple[int, int, int], payloads: dict[str, list[bytes]],
           ids: dict[str, int], mode: str, first: int, upto: int,
           cpu_roots: dict[str, list[int]]) -> tuple[dict[str, Any], dict[str, float]]:
    """Run the shape's gateways in :data:`FLEET_PROCESSES` publisher processes; their records
    merged, and the CPU counters (:func:`_cpu_seconds`) at the start (connected, before ``go``)."""
    names = _shape_gateways(shape)
    blob = root / f"payloads-{_shape_name(shape)}.pkl"
    if not blob.exists():
        blob.write_bytes(pickle.dumps(payloads))
    fleet = ingest_fleet.launch(root, f"{_shape_name(shape)}-{mode}", host=broker.host, port=broker.port,
                                community=COMMUNITY, gateways=[(gw, f"{ids[gw]:016x}", f"pw-{gw}") for gw in names],
                                payloads=blob, mode=mode, first=first, upto=upto, processes=FLEET_PROCESSES)
    cpu = _cpu_seconds({**cpu_roots, "publishers": [proc.pid for proc, _ in fleet]})
    ingest_fleet.go(fleet)
    return ingest_fleet.collect(fleet), cpu


def _stored_at(db: str, ids: dict[str, int], keys: int, timeout: float) -> dict[tuple[int, int], float]:
    """Poll ``ingest_batches`` until ``keys`` rows of these gateways exist; their received_at (epoch s)."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(db, autocommit=True) as conn:
        while True:
            rows = conn.execute("SELECT gateway_id, seq, extract(epoch FROM received_at) FROM ingest_batches "
                                "WHERE gateway_id = ANY(%s)", (list(ids.values()),)).fetchall()
            if len(rows) >= keys or time.monotonic() > deadline:
                return {(int(g), int(s)): float(t) for g, s, t in rows}
            time.sleep(0.05)


def _cpu_seconds(roots: dict[str, list[int]]) -> dict[str, float]:
    """CPU seconds (user + system) used so far by each group's processes and their descendants
    (``/proc``); ``publishers`` also counts this process's waited-for children (fleet processes
    that ended), so live fleet pids before and none after measure a fleet's run."""
    ticks = os.sysconf("SC_CLK_TCK")
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue
        fields = raw[raw.rindex(")") + 2:].split()
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    out: dict[str, float] = {}
    for name, pids in roots.items():
        total, stack = 0.0, list(pids)
        while stack:
            pid = stack.pop()
            if pid in stats:
                total += stats[pid][1]
                stack += children.get(pid, [])
        out[name] = total
    waited = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["publishers"] = out.get("publishers", 0.0) + waited.ru_utime + waited.ru_stime
    return out


def _pcts(values: list[float]) -> tuple[float, float]:
    if not values:
        return 0.0, 0.0
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


def _matrix_shape(root: Path, db: str, broker: MosquittoServer, shape: tuple[int, int, int],
                  quick: bool, cpu_roots: dict[str, list[int]], statuses: list[float]) -> dict[str, Any]:
    gateways, readings, metrics = shape
    names = _shape_gateways(shape)
    metric_names = [f"bm{k}" for k in range(metrics)]
    with psycopg.connect(db) as conn:
        ids = {gw: store.add_gateway(conn, COMMUNITY, gw) for gw in names}
        for gw in names:
            store.add_devices_bulk(conn, COMMUNITY, gw, [f"{gw}-d{i}" for i in range(readings)])
        conn.execute("INSERT INTO metrics (name) SELECT unnest(%s::text[]) ON CONFLICT DO NOTHING", (metric_names,))
        device_ids = [int(r[0]) for r in conn.execute(
            "SELECT d.id FROM devices d JOIN gateways g ON g.id = d.gateway_id WHERE g.id = ANY(%s)",
            (list(ids.values()),)).fetchall()]
        metric_ids = [int(r[0]) for r in conn.execute(
            "SELECT id FROM metrics WHERE name = ANY(%s)", (metric_names,)).fetchall()]
    burst, paced_s = _matrix_rounds(shape, quick)
    rng = np.random.default_rng(11)
    base = int(time.time() * 1000) - 2 * 3600_000
    payloads: dict[str, list[bytes]] = {}
    for gw in names:
        out = []
        for seq in range(1, WARM_ROUNDS + burst + paced_s + 1):
            values = np.round(rng.normal(50, 10, (readings, metrics)), 3).tolist()
            ts = base + seq * 1000
            items = [{"device": f"{gw}-d{i}", "ts": ts, "values": dict(zip(metric_names, v, strict=True))}
                     for i, v in enumerate(values)]
            out.append(wire.encode("telemetry", gateway=gw, community=COMMUNITY, seq=seq, sent_at=base + seq * 1000,
                                   items=items, incarnation=f"{ids[gw]:016x}"))
        payloads[gw] = out
    points_per_message = readings * metrics
    copy_rate = _copy_baseline(db, device_ids, metric_ids, burst * gateways * points_per_message, metrics=metrics)

    result: dict[str, Any] = {"copy_points_per_s": round(copy_rate)}
    before = 0  # messages of this shape already stored (the burst's, in the paced phase)
    # warm-up, not measured: a gateway's first message at a worker costs registry lookups (and
    # its incarnation's first row), once in a deployment's life
    w = WARM_ROUNDS
    phases = (("warm", 0, w), ("burst", w, w + burst), ("paced", w + burst, w + burst + paced_s))
    for mode, first, upto in phases:
        began = time.time()
        record, cpu_before = _fleet(root, broker, shape, payloads, ids, "paced" if mode == "paced" else "burst",
                                    first, upto, cpu_roots)
        sent = sum(len(r["published"]) for r in record.values())
        stored = _stored_at(db, ids, before + sent, timeout=300)
        cpu_after = _cpu_seconds(cpu_roots)
        before += sent
        if mode == "warm":
            continue
        publish = [(ids[gw], int(seq), t) for gw, r in record.items() for seq, t in r["published"].items()]
        confirm = {(ids[gw], int(seq)): t for gw, r in record.items() for seq, t in r["confirmed"].items()}
        to_commit = [(stored[(g, s)] - t) * 1000 for g, s, t in publish if (g, s) in stored]
        to_confirm = [(confirm[(g, s)] - stored[(g, s)]) * 1000 for g, s, _ in publish
                      if (g, s) in stored and (g, s) in confirm]
        dropped = sum(1 for g, s, _ in publish if (g, s) not in confirm)
        c50, c99 = _pcts(to_confirm)
        row: dict[str, Any] = {
            "messages": sent, "stored_messages": sum(1 for g, s, _ in publish if (g, s) in stored),
            "commit_to_confirm_p50_ms": round(c50, 1), "commit_to_confirm_p99_ms": round(c99, 1),
            "confirmations_dropped": dropped,
            "confirmation_messages": sum(r["messages"] for r in record.values()),
            "confirmed_twice": sum(r["repeats"] for r in record.values()),
            "behind_hints": sum(r["behind"] for r in record.values()),
            # the workers' retained ``behind`` status (put up or refreshed) while this phase ran
            "behind_statuses": sum(1 for t in statuses if t >= began),
        }
        if mode == "burst":
            first_publish = min(t for _, _, t in publish)
            last_commit = max(stored[(g, s)] for g, s, _ in publish if (g, s) in stored)
            elapsed = max(1e-6, last_commit - first_publish)
            # how long the fleet took to hand the burst over: near ``elapsed`` means the publishers,
            # not the workers, set the pace
            row["publish_s"] = round(max(t for _, _, t in publish) - first_publish, 3)
            row["elapsed_s"] = round(elapsed, 3)
            row["points_per_s"] = round(sent * points_per_message / elapsed)
            row["messages_per_s"] = round(sent / elapsed)
            row["ratio_to_copy"] = round(row["points_per_s"] / copy_rate, 3)
            # where the cores went, per message of the burst (from ``go`` to the last commit; the
            # publishers' figure also holds their wait for the last confirmations)
            row["cpu_us_per_message"] = {k: round((cpu_after[k] - cpu_before[k]) / sent * 1e6, 1) for k in cpu_after}
        else:
            p50, p99 = _pcts(to_commit)
            row["publish_to_commit_p50_ms"] = round(p50, 1)
            row["publish_to_commit_p99_ms"] = round(p99, 1)
        result[mode] = row
    with psycopg.connect(db) as conn:  # counted now: the next shape's COPY baseline truncates the table
        counts = conn.execute("SELECT count(*), count(DISTINCT (device_id, metric_id, time)) FROM telemetry "
                            "WHERE device_id = ANY(%s)", (device_ids,)).fetchone()
    assert counts is not None
    result["stored_points"], distinct = int(counts[0]), int(counts[1])
    result["duplicates"] = result["stored_points"] - distinct
    result["sent_points"] = (WARM_ROUNDS + burst + paced_s) * gateways * points_per_message
    return result


def run(quick: bool = False) -> dict[str, Any]:
    phase_messages = 80 if quick else 600
    latency_seconds = 4.0 if quick else 10.0
    root = Path(tempfile.mkdtemp(prefix="guanjia-bench-ingest-"))
    root.chmod(0o755)
    pg = PostgresServer(root / "pg")
    broker = MosquittoServer(root / "mq")
    workers: list[subprocess.Popen[bytes]] = []
    gws: Gateways | None = None
    listener: Listener | None = None
    try:
        pg.start()
        admin = BrokerAccount("admin", "bench-admin-password", [("readwrite", "#")])
        # the workers' account may publish storage confirmations (as in production), so they are measured
        cloud = BrokerAccount("cloud", "bench-cloud-password", [("read", "guanjia/v1/#"),
                                                                ("write", "guanjia/v1/+/+/cmd"),
                                                                ("write", wire.INGEST_STATUS_FILTER)])
        broker.set_accounts([admin, cloud, *_shape_accounts()])
        broker.start()
        db = pg.dsn
        migrate(db)
        timescale = False
        with psycopg.connect(db) as conn:
            timescale = storage_mode(conn) == "timescale"
            ids: dict[str, int] = {}
            for g in range(GATEWAYS):
                name = f"gw{g}"
                ids[name] = store.add_gateway(conn, COMMUNITY, name)
                store.add_devices_bulk(conn, COMMUNITY, name, [f"{name}-d{i:04d}" for i in range(READINGS)])
            conn.execute("INSERT INTO metrics (name) VALUES ('temp'), ('pressure'), ('current'), ('flow') "
                         "ON CONFLICT DO NOTHING")
            device_ids = [int(r[0]) for r in conn.execute("SELECT id FROM devices ORDER BY id").fetchall()]
            metric_ids = [int(r[0]) for r in conn.execute("SELECT id FROM metrics ORDER BY id").fetchall()]
        if not timescale:
            asyncio.run(_partitions(db))
        copy_rate = _copy_baseline(db, device_ids, metric_ids, phase_messages * POINTS_PER_MESSAGE)

        listener = Listener(db)
        listener.start()
        listener.ready.wait(10)
        cloud_url = broker.url_for(cloud)
        logs = root / "workers"
        logs.mkdir()
        workers.append(_worker(db, cloud_url, "bench-a", logs / "a.log"))
        _wait_log(logs / "a.log", "connected")
        gws = Gateways(broker.url_for(admin), ids)
        probe = gws.batch(GATEWAYS)  # warm-up: caches, partitions
        time.sleep(0.5)
        for item in probe:
            gws.publish(item, wait=True)
        listener.wait_for([k for k, _, _ in probe], timeout=60)

        one = _throughput(gws, listener, phase_messages)
        workers.append(_worker(db, cloud_url, "bench-b", logs / "b.log"))
        _wait_log(logs / "b.log", "connected")
        time.sleep(1.0)
        two = _throughput(gws, listener, phase_messages)
        best = max(one, two)
        p50, p99 = _latency(gws, listener, best / 2, latency_seconds)
        time.sleep(0.5)
        with psycopg.connect(db) as conn:
            stored = int(conn.execute("SELECT count(*) FROM telemetry").fetchone()[0])  # type: ignore[index]
            dupes = int(conn.execute(
                "SELECT coalesce(sum(c - 1), 0) FROM (SELECT count(*) AS c FROM telemetry "
                "GROUP BY device_id, metric_id, time HAVING count(*) > 1) d").fetchone()[0])  # type: ignore[index]
        cpu_roots = {"workers": [w.pid for w in workers], "broker": [broker.pid() or 0],
                     "postgres": [int((pg.data_dir / "postmaster.pid").read_text().split()[0])]}
        matrix = {_shape_name(shape): _matrix_shape(root, db, broker, shape, quick, cpu_roots, gws.statuses)
                  for shape in MATRIX}
        rss = max(_rss_mb(w.pid) for w in workers)
        return {
            "points_per_s": round(best),
            "copy_points_per_s": round(copy_rate),
            "ratio_to_copy": round(best / copy_rate, 3),
            "latency_p50_ms": round(p50, 1),
            "latency_p99_ms": round(p99, 1),
            "worker_rss_mb": round(rss, 1),
            "sent": gws.sent_points,
            "stored": stored,
            "duplicates": dupes,
            "points_per_s_one_worker": round(one),
            "points_per_s_two_workers": round(two),
            "timescaledb": timescale,
            "points_per_s_msg200": matrix["500x10x20"]["burst"]["points_per_s"],
            "messages_per_s_msg40": matrix["500x10x4"]["burst"]["messages_per_s"],
            "confirm_p99_ms_burst": max(m["burst"]["commit_to_confirm_p99_ms"] for m in matrix.values()),
            "behind_statuses_burst": sum(m["burst"]["behind_statuses"] for m in matrix.values()),
            "confirmations_dropped": sum(m[p]["confirmations_dropped"] for m in matrix.values()
                                         for p in ("burst", "paced")),
            "matrix_exact": all(m["stored_points"] == m["sent_points"] and not m["duplicates"]
                                for m in matrix.values()),
            "matrix": matrix,
            "load_average_1m": round(os.getloadavg()[0], 2),
        }
    finally:
        if listener is not None:
            listener.stop.set()
        if gws is not None:
            gws.close()
        for w in workers:
            if w.poll() is None:
                w.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.wait(20)
            except subprocess.TimeoutExpired:
                w.kill()
        broker.stop(kill=True)
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
