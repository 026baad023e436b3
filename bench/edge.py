"""Edge agent benchmark: acquisition throughput on one core, a 10-minute broker outage, a DL/T 645 fleet.

Processes (pinned to separate cores when the machine has two or more):

* **devices** — ``python -m bench.edge serve``: pymodbus ``SimDevice`` servers for N Modbus devices in
  the simulators' building mix (per building 2 SDM630, 2 SDM120, 2 elevators, 1 VFD pump set),
  10 unit ids per TCP port like RS-485 converters, registers encoded from the device profiles with
  the shared codec, every address of a profile's register runs served except declared holes.
* **agent** — ``guanjia edge run`` exactly as deployed, report-by-exception OFF (every polled value
  is sent: the worst case for the outbox and uplink), heartbeat every 2 s.
* **cloud side** — a paho subscriber in this process with a persistent session counting every
  sequenced message per seq.

Part 1 (live): after a warm-up, two heartbeats ``measure_s`` apart give Modbus requests/s, scan
lateness p99 (the agent's histogram of recent poll starts), RSS, and the subscriber gives the live
reading rate.

Part 3 (:mod:`bench.edge_meters`): a DL/T 645 fleet on shared 2400-baud buses — meters per bus,
reads/s, lateness p99 — against the bus capacity measured in the same run (``dlt645_*`` keys).

Part 2 (outage): the broker is stopped; **the outage's 600 s of traffic are generated into the
agent's outbox while the broker is down** (readings at the live rate measured in part 1, device ids
and metrics of the fleet, timestamps spread over the ten minutes) — not ten minutes of wall time —
and the agent then keeps polling for a few more seconds with the broker down. The broker is
restarted; ``drain_ratio`` = backlog readings / time until the last backlog seq arrived (counted
from the broker restart, so the reconnect delay is included) ÷ live readings/s. Every seq that was
in the outbox when the broker came back must arrive, once (``outage_duplicates`` counts repeats).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BUILDING = [("meter-1", "eastron-sdm630"), ("lift-1", "elevator-gbt24476"), ("pump-1", "vfd-pump"),
            ("lift-2", "elevator-gbt24476"), ("meter-2", "eastron-sdm630"), ("meter-3", "eastron-sdm120"),
            ("meter-4", "eastron-sdm120")]
TYPICAL = {
    "voltage": 230.0, "current": 12.5, "power": 2800.0, "frequency": 50.0, "factor": 0.95, "energy": 12345.6,
    "pressure": 3.2, "floor": 5, "load": 30, "hours": 1234, "count": 5678,
}


# --------------------------------------------------------------------------- device side
def _typical(name: str, point: Any) -> Any:
    if point.dtype == "bool" or point.table in ("coil", "discrete_input"):
        return False
    if point.enum:
        return next(iter(point.enum))
    if point.dtype == "bitfield":
        return 0
    for key, value in TYPICAL.items():
        if key in name:
            return value
    return 1


def _runs(profile: Any, table: str) -> dict[int, int]:
    """Registers of ``table``: every address from a point run's start to its end, holes excluded."""
    from device_profiles.codec import encode

    regs: dict[int, int] = {}
    points = [p for p in profile.points if p.table == table]
    if not points:
        return regs
    holes = profile.modbus.holes if profile.modbus else []
    lo = min(p.address for p in points)
    hi = max(p.address + p.register_count for p in points)
    for address in range(lo, hi):
        if not any(h.overlaps(table, address, 1) for h in holes):
            regs[address] = 0
    for p in points:
        try:
            values = encode(p, _typical(p.name, p))
        except Exception:
            values = [0] * p.register_count
        for i, reg in enumerate(values):
            regs[p.address + i] = reg
    return regs


def _simdata(regs: dict[int, int], bits: bool) -> list[Any]:
    from pymodbus.simulator import DataType, SimData

    dtype = DataType.BITS if bits else DataType.REGISTERS
    if not regs:
        return [SimData(9000, values=[0], datatype=dtype)]
    out: list[Any] = []
    run: list[int] = []
    start = prev = -2
    for address in sorted(regs):
        if address != prev + 1 and run:
            out.append(SimData(start, values=run, datatype=dtype))
            run = []
        if not run:
            start = address
        run.append(regs[address])
        prev = address
    out.append(SimData(start, values=run, datatype=dtype))
    return out


def _device(unit: int, profile: Any) -> Any:
    from pymodbus.simulator import SimDevice

    coils = {p.address // 16: 0 for p in profile.points if p.table == "coil"}
    discretes = {p.address // 16: 0 for p in profile.points if p.table == "discrete_input"}
    return SimDevice(id=unit, simdata=(_simdata(coils, True), _simdata(discretes, True),
                                       _simdata(_runs(profile, "holding_register"), False),
                                       _simdata(_runs(profile, "input_register"), False)))


def fleet(devices: int) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    building = 0
    while len(out) < devices:
        building += 1
        out.extend((f"b{building}-{name}", profile) for name, profile in BUILDING)
    return out[:devices]


async def serve(devices: int, per_port: int, inventory: Path) -> None:
    from pymodbus.server import ModbusTcpServer

    from device_profiles import find_profile
    from guanjia.core.ports import free_port

    servers = []
    entries = []
    specs = fleet(devices)
    for start in range(0, len(specs), per_port):
        port = free_port()
        sims = []
        for unit, (device_id, profile_id) in enumerate(specs[start:start + per_port], start=1):
            sims.append(_device(unit, find_profile(profile_id)))
            entries.append({"id": device_id, "profile": profile_id, "host": "127.0.0.1", "port": port, "unit": unit})
        server = ModbusTcpServer(sims, address=("127.0.0.1", port))
        await server.serve_forever(background=True)
        servers.append(server)
    tmp = inventory.with_suffix(".tmp")
    tmp.write_text(json.dumps({"devices": entries}))
    tmp.replace(inventory)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()


# --------------------------------------------------------------------------- cloud side
class Subscriber:
    """Counts sequenced messages per seq (paho network thread; persistent session) and, like the
    ingest service, confirms each one stored on the gateway's ``cmd`` topic (end-to-end ack)."""

    def __init__(self, host: str, port: int, username: str, password: str, prefix: str) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.lock = threading.Lock()
        self.seen: dict[int, int] = {}
        self.arrival: dict[int, float] = {}
        self.items: dict[int, int] = {}
        self.values = 0
        self.status: list[tuple[float, dict[str, Any]]] = []
        self.prefix = prefix
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{secrets.token_hex(4)}",
                                  clean_session=False)
        self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 2)
        self.client.connect(host, port, keepalive=30)
        self.client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any = None) -> None:
        client.subscribe(f"{self.prefix}/#", qos=1)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        import orjson

        doc = orjson.loads(message.payload)
        now = time.monotonic()
        with self.lock:
            if doc.get("kind") == "status":
                self.status.append((now, doc))
                return
            if doc.get("kind") not in ("telemetry", "alarms", "events"):
                return  # our own confirmations on …/cmd
            seq = doc["seq"]
            self.seen[seq] = self.seen.get(seq, 0) + 1
            self.arrival.setdefault(seq, now)
            if doc["kind"] == "telemetry":
                self.items[seq] = len(doc["readings"])
                self.values += sum(len(r["values"]) for r in doc["readings"])
        client.publish(f"{self.prefix}/cmd", orjson.dumps(
            {"schema": 1, "kind": "stored", "seqs": [[seq, seq]], "ts": int(time.time() * 1000)}), qos=1)

    def wait_status(self, after: float, timeout: float = 30) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for stamp, doc in self.status:
                    if stamp > after and doc.get("state") == "online":
                        return doc
            time.sleep(0.1)
        raise RuntimeError("no heartbeat from the agent")

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


# --------------------------------------------------------------------------- harness
def _pin(pid: int, cpu: int) -> None:
    """Pin a process to one core when ``GUANJIA_BENCH_PIN=1`` (off by default: on a shared, loaded
    host pinning ties the agent to one busy core; the agent is one event loop, i.e. one core's worth,
    either way, and ``agent_cpu_share`` reports what it used)."""
    if os.environ.get("GUANJIA_BENCH_PIN") != "1":
        return
    if (os.cpu_count() or 1) >= 2 and hasattr(os, "sched_setaffinity"):
        with contextlib.suppress(OSError):
            os.sched_setaffinity(pid, {cpu})


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (Linux /proc)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def _outbox_last(path: Path) -> int:
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        row = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()
        return int(row[0]) - 1 if row else 0
    finally:
        db.close()


def _stop(proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


async def _prefill(path: Path, gateway: str, device_ids: Iterable[str], readings_per_s: float, seconds: int,
                   metrics_per_reading: int) -> tuple[int, int, int]:
    """Commit ``seconds`` × ``readings_per_s`` readings into the agent's outbox (agent stopped)."""
    from edge.outbox import Outbox

    ids = list(device_ids)
    total = int(readings_per_s * seconds)
    names = [f"m{i}" for i in range(metrics_per_reading)]
    start_ms = int(time.time() * 1000) - seconds * 1000
    async with Outbox(path, gateway=gateway, batch_max_items=1000, synchronous="normal") as outbox:
        first = outbox.last_seq + 1
        for n in range(total):
            ts = start_ms + int(n / readings_per_s * 1000)
            outbox.add_reading({"device": ids[n % len(ids)], "ts": ts,
                                "values": dict.fromkeys(names, 230.0 + n % 7 * 0.1), "quality": "good"})
            if n % 50_000 == 49_999:
                await outbox.flush()
        await outbox.flush()
        return first, outbox.last_seq, total


def run(quick: bool = False) -> dict[str, Any]:
    devices = 200 if quick else 1000
    warmup_s, measure_s = (8.0, 10.0) if quick else (15.0, 30.0)
    outage_s = 600
    from cloud.registry.broker import BrokerAccount
    from device_profiles import find_profile
    from guanjia.app.stack.mosquitto import MosquittoServer

    tmp = Path(tempfile.mkdtemp(prefix="guanjia-bench-edge-"))
    tmp.chmod(0o755)
    community, gateway = "bench", "gw-bench"
    broker = MosquittoServer(tmp / "mq")
    admin = BrokerAccount("admin", secrets.token_urlsafe(12), [("readwrite", "#")])
    gw = BrokerAccount.gateway(community, gateway)
    broker.set_accounts([admin, gw])
    broker.start()
    python = sys.executable
    procs: list[subprocess.Popen[bytes]] = []
    sub: Subscriber | None = None
    try:
        inventory = tmp / "inventory.json"
        sim = subprocess.Popen([python, "-m", "bench.edge", "serve", "--devices", str(devices),
                                "--inventory", str(inventory)], cwd=ROOT,
                               stdout=open(tmp / "sim.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
        procs.append(sim)
        _pin(sim.pid, 1)
        deadline = time.monotonic() + 120
        while not inventory.exists():
            if sim.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("device simulator did not start: " + (tmp / "sim.log").read_text()[-2000:])
            time.sleep(0.2)
        outbox = tmp / "outbox.db"
        config = tmp / "agent.yaml"
        import yaml

        inv = json.loads(inventory.read_text())["devices"]
        links: dict[int, list[dict[str, Any]]] = {}
        for entry in inv:
            links.setdefault(entry["port"], []).append(
                {"id": entry["id"], "profile": entry["profile"], "unit": entry["unit"], "report_by_exception": False})
        config.write_text(yaml.safe_dump({
            "gateway": gateway, "community": community,
            "uplink": {"url": broker.url_for(gw), "reconnect_initial_s": 0.2, "reconnect_max_s": 1.0,
                       "max_inflight": 32},
            "outbox": {"path": str(outbox), "flush_interval_s": 0.5, "batch_max_items": 1000, "max_bytes": "2GB",
                       "synchronous": "full"},
            "links": [{"type": "tcp", "host": "127.0.0.1", "port": port, "timeout_s": 1.0, "devices": devs}
                      for port, devs in sorted(links.items())],
            "rules": {"builtin": True, "state_path": str(tmp / "rules.json"), "reload": False},
            "health": {"heartbeat_s": 2},
        }))
        sub = Subscriber(broker.host, broker.port, admin.username, admin.password, f"guanjia/v1/{community}/{gateway}")
        agent_log = open(tmp / "agent.log", "ab")  # noqa: SIM115

        def start_agent() -> subprocess.Popen[bytes]:
            proc = subprocess.Popen([python, "-m", "guanjia.app.cli.main", "edge", "run", "--config", str(config)],
                                    cwd=ROOT, stdout=agent_log, stderr=subprocess.STDOUT)
            _pin(proc.pid, 0)
            procs.append(proc)
            return proc

        # ---------------------------------------------------------------- part 1: live
        agent = start_agent()
        time.sleep(warmup_s)
        first = sub.wait_status(time.monotonic())
        t0 = time.monotonic()
        cpu_agent0, cpu_sim0 = _cpu_s(agent.pid), _cpu_s(sim.pid)
        with sub.lock:
            items0 = sum(sub.items.values())
            values0 = sub.values
        time.sleep(measure_s)
        second = sub.wait_status(time.monotonic())
        t1 = time.monotonic()
        cpu_agent = (_cpu_s(agent.pid) - cpu_agent0) / (t1 - t0)
        cpu_sim = (_cpu_s(sim.pid) - cpu_sim0) / (t1 - t0)
        load = os.getloadavg()[0]
        with sub.lock:
            items1 = sum(sub.items.values())
            values1 = sub.values
        h0, h1 = first["health"], second["health"]
        span = (h1["uptime_s"] - h0["uptime_s"]) or 1.0
        requests_per_s = (h1["poll"]["requests"] - h0["poll"]["requests"]) / span
        live_readings_per_s = (items1 - items0) / (t1 - t0)
        live_values_per_s = (values1 - values0) / (t1 - t0)
        tags = sum(len(find_profile(e["profile"]).points) for e in inv)
        figures: dict[str, Any] = {
            "devices": devices,
            "devices_online": h1["devices_online"],
            "modbus_requests_per_s": round(requests_per_s, 1),
            "scan_lateness_p99_ms": h1["poll"]["lateness"]["p99_ms"],
            "scan_lateness_p50_ms": h1["poll"]["lateness"]["p50_ms"],
            "request_time_p99_ms": h1["poll"]["request_time"]["p99_ms"],
            "rss_mb": h1["rss_mb"],
            "poll_errors": h1["poll"]["poll_errors"],
            "overruns": h1["poll"]["overruns"],
            "tags": tags,
            "live_readings_per_s": round(live_readings_per_s, 1),
            "live_values_per_s": round(live_values_per_s, 1),
            "requests_per_device_s": round(requests_per_s / devices, 2),
            "values_per_tag_s": round(live_values_per_s / max(1, tags), 3),
            "rss_kb_per_device": round(h1["rss_mb"] * 1000 / devices, 1),
            "agent_cpu_share": round(cpu_agent, 3),
            "agent_cpu_us_per_request": round(cpu_agent * 1e6 / max(1.0, requests_per_s), 1),
            "agent_capacity_requests_per_core_s": round(requests_per_s / max(1e-6, cpu_agent), 1),
            "sim_cpu_share": round(cpu_sim, 3),
            "host_load_avg_1m": round(load, 2),
            "host_cpus": os.cpu_count() or 1,
            "measure_s": measure_s,
        }
        _stop(agent)

        # ---------------------------------------------------------------- part 2: outage
        broker.stop()
        metrics_per_reading = max(1, round(live_values_per_s / max(1.0, live_readings_per_s)))
        first_seq, _, prefilled = asyncio.run(_prefill(outbox, gateway, (e["id"] for e in inv),
                                                       live_readings_per_s, outage_s, metrics_per_reading))
        agent = start_agent()
        prefilled_last = _outbox_last(outbox)
        deadline = time.monotonic() + 60
        while _outbox_last(outbox) <= prefilled_last and time.monotonic() < deadline:
            time.sleep(0.2)  # the agent is up and committing live readings
        time.sleep(5.0)  # live polling goes on while the broker is still down
        watermark = _outbox_last(outbox)
        with sub.lock:
            already = set(sub.seen)
        backlog = [s for s in range(first_seq, watermark + 1) if s not in already]
        broker.start()
        restarted = time.monotonic()
        deadline = restarted + 600
        while time.monotonic() < deadline:
            with sub.lock:
                if all(s in sub.seen for s in backlog):
                    break
            time.sleep(0.2)
        with sub.lock:
            arrived = [sub.arrival[s] for s in backlog if s in sub.arrival]
            drained_at = max(arrived) if arrived else time.monotonic()
            backlog_items = sum(sub.items.get(s, 0) for s in backlog)
        time.sleep(2.0)
        _stop(agent)
        time.sleep(1.0)
        with sub.lock:
            stored = sum(1 for s in backlog if s in sub.seen)
            duplicates = sum(n - 1 for s, n in sub.seen.items() if n > 1)
        drain_s = max(0.001, drained_at - restarted)
        drain_rate = backlog_items / drain_s
        figures.update({
            "outage_seconds": outage_s,
            "outage_prefilled_readings": prefilled,
            "outage_sent": len(backlog),
            "outage_stored": stored,
            "outage_duplicates": duplicates,
            "outage_backlog_readings": backlog_items,
            "outage_drain_s": round(drain_s, 2),
            "backlog_readings_per_s": round(drain_rate, 1),
            "drain_ratio": round(drain_rate / max(1e-9, live_readings_per_s), 2),
        })

        # ---------------------------------------------------------------- part 3: a DL/T 645 fleet
        figures.update(_meters(quick, tmp, broker.url_for(gw), sub, procs, agent_log, community, gateway))
        return figures
    finally:
        if sub is not None:
            sub.close()
        for proc in procs:
            _stop(proc, 10)
        broker.stop(kill=True)
        shutil.rmtree(tmp, ignore_errors=True)


def _meters(quick: bool, tmp: Path, broker_url: str, sub: Subscriber, procs: list[subprocess.Popen[bytes]],
            agent_log: Any, community: str, gateway: str) -> dict[str, Any]:
    """Part 3 (:mod:`bench.edge_meters`): DL/T 645 meters on shared 2400-baud buses."""
    import yaml

    from bench import edge_meters

    buses, per_bus = (4, 10) if quick else (16, 10)
    warmup_s, measure_s = (17.0, 15.0) if quick else (20.0, 45.0)
    python = sys.executable
    inventory = tmp / "meters.json"
    sim = subprocess.Popen([python, "-m", "bench.edge", "serve-meters", "--buses", str(buses), "--per-bus",
                            str(per_bus), "--inventory", str(inventory)], cwd=ROOT,
                           stdout=open(tmp / "meters.log", "ab"), stderr=subprocess.STDOUT)  # noqa: SIM115
    procs.append(sim)
    deadline = time.monotonic() + 60
    while not inventory.exists():
        if sim.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("meter simulator did not start: " + (tmp / "meters.log").read_text()[-2000:])
        time.sleep(0.2)
    entries = json.loads(inventory.read_text())["devices"]
    config = tmp / "agent-meters.yaml"
    config.write_text(yaml.safe_dump(edge_meters.agent_config(inventory, broker_url, tmp, community, gateway)))
    agent = subprocess.Popen([python, "-m", "guanjia.app.cli.main", "edge", "run", "--config", str(config)],
                             cwd=ROOT, stdout=agent_log, stderr=subprocess.STDOUT)
    procs.append(agent)
    time.sleep(warmup_s)
    first = sub.wait_status(time.monotonic())
    time.sleep(measure_s)
    second = sub.wait_status(time.monotonic())
    _stop(agent)
    # the baseline: the last bus, now idle, read back to back by one master
    last = entries[-1]
    capacity = asyncio.run(edge_meters.bus_capacity(last["host"], last["port"], last["address"], 5.0))
    _stop(sim)
    return edge_meters.figures(first["health"], second["health"], buses=buses, per_bus=per_bus, capacity=capacity)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.edge")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_p = sub.add_parser("serve", help="serve simulated Modbus devices (the bench's device process)")
    serve_p.add_argument("--devices", type=int, default=500)
    serve_p.add_argument("--per-port", type=int, default=10)
    serve_p.add_argument("--inventory", type=Path, required=True)
    meters_p = sub.add_parser("serve-meters", help="serve simulated DL/T 645 meter buses (part 3's device process)")
    meters_p.add_argument("--buses", type=int, default=16)
    meters_p.add_argument("--per-bus", type=int, default=10)
    meters_p.add_argument("--baudrate", type=int, default=2400)
    meters_p.add_argument("--inventory", type=Path, required=True)
    sub.add_parser("run", help="run the benchmark and print its JSON")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.command == "serve":
        asyncio.run(serve(args.devices, args.per_port, args.inventory))
    elif args.command == "serve-meters":
        from bench.edge_meters import serve_meters

        asyncio.run(serve_meters(args.buses, args.per_bus, args.baudrate, args.inventory))
    else:
        print(json.dumps(run(args.quick), indent=2))


if __name__ == "__main__":
    main()
