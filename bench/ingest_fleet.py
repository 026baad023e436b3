"""Simulated gateways for the ingest matrix (``python -m bench.ingest_fleet SPEC``), one process.

Each gateway has its **own broker account and MQTT connection** (as real gateways have: the
broker's per-client queues, ACL checks and fan-out of ``cmd`` confirmations are part of what is
measured), and a process runs hundreds of them on one asyncio event loop over the ingest's own
protocol code (:mod:`cloud.ingest.mqtt`). Why not paho (issue 21): one paho client per gateway is
one network thread per gateway and ~100 µs of Python per publish; on this 2-core machine the
publishers then ate the cores the workers were measured on, and ``publish_s`` was near
``elapsed_s``. Here every PUBLISH is encoded before ``go`` (topic, packet id, payload: the burst
writes pre-built bytes), a gateway's burst is one ``transport.write``, and
PUBACKs and confirmations are read in bulk per received chunk; confirmations are PUBACKed in one write.

Each gateway subscribes to its own ``…/cmd`` topic and records when each seq was first
confirmed (``stored``), how many confirmation messages it got, how many named a seq it had
already seen confirmed, and how many carried the ``behind`` hint. Protocol with the parent:
prints ``ready`` once every client is subscribed, waits for a line on stdin, publishes payloads
``first`` to ``upto`` (``burst``: every gateway's messages at once, one write per connection;
``paced``: one message per gateway per ``pace_s``, gateways spread over the
period), waits up to ``confirm_timeout_s`` for every seq to be confirmed and writes its record as
JSON to ``out``. Each connection keeps within the broker's Receive Maximum (CONNACK).
"""

from __future__ import annotations

import asyncio
import pickle
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from cloud.ingest import packets
from cloud.ingest.mqtt import Connection, open_connection
from cloud.registry.broker import BrokerAccount
from guanjia.core import wire
from guanjia.core.settings import MqttUrl

Fleet = list[tuple[subprocess.Popen[bytes], Path]]
"""Running publisher processes and the file each writes its record to."""


class Gateway:
    def __init__(self, spec: dict[str, Any], payloads: list[bytes]) -> None:
        self.name: str = spec["name"]
        self.cmd: str = spec["cmd"]
        self.incarnation: str = spec["incarnation"]
        self.username: str = spec["username"]
        self.password: str = spec["password"]
        topic = packets.topic_prefix(spec["topic"])
        # index i is seq i + 1 and packet id i % 65535 + 1 (unique within the receive window)
        self.packets = [packets.publish(topic, payload, i % 65_535 + 1) for i, payload in enumerate(payloads)]
        self.published: dict[int, float] = {}
        self.confirmed: dict[int, float] = {}
        self.messages = 0
        self.repeats = 0
        self.behind = 0
        self.conn: Connection | None = None
        self.window = 65_535
        self.inflight = 0
        self.waiting: deque[bytes] = deque()

    async def connect(self, host: str, port: int) -> None:
        url = MqttUrl(host, port, self.username, self.password)
        self.conn, session = await open_connection(
            url, f"bench-{self.name}", keepalive=60, clean_start=True, session_expiry=0, receive_maximum=65_535,
            on_publishes=self._on_publishes, on_pubacks=self._on_pubacks)
        self.window = session.receive_maximum
        _, _, _, codes = await self.conn.request(1, packets.subscribe(1, [self.cmd]), 30)
        if not codes or codes[0] >= 0x80:
            raise SystemExit(f"{self.name}: subscription refused {codes!r}")

    def _on_publishes(self, items: list[packets.Publish]) -> None:
        now = time.time()
        assert self.conn is not None
        acks = [pid for _, _, pid, qos in items if qos]
        if acks:
            self.conn.write(packets.pubacks(acks))
        for _, payload, _, _ in items:
            self.messages += 1
            self.behind += wire.stored_behind(payload)
            for first, last in wire.parse_stored(payload, self.incarnation) or []:
                for seq in range(first, last + 1):
                    if seq in self.confirmed:
                        self.repeats += 1
                    else:
                        self.confirmed[seq] = now

    def _on_pubacks(self, pids: list[int]) -> None:
        assert self.conn is not None
        self.inflight -= len(pids)
        while self.waiting and self.inflight < self.window:
            self.conn.write(self.waiting.popleft())
            self.inflight += 1

    def publish(self, indexes: range) -> None:
        """Messages ``indexes`` (seq = index + 1): as many as the broker's window takes in one
        write, the rest as PUBACKs come back."""
        assert self.conn is not None
        now = time.time()
        ready: list[bytes] = []
        for index in indexes:
            self.published[index + 1] = now
            packet = self.packets[index]
            if self.inflight < self.window and not self.waiting:
                ready.append(packet)
                self.inflight += 1
            else:
                self.waiting.append(packet)
        if ready:
            self.conn.write(b"".join(ready))

    def done(self) -> bool:
        return len(self.confirmed) >= len(self.published)

    def record(self) -> dict[str, Any]:
        return {"published": self.published, "confirmed": self.confirmed, "messages": self.messages,
                "repeats": self.repeats, "behind": self.behind}


async def _run(spec: dict[str, Any], payloads: dict[str, list[bytes]]) -> bytes:
    """Connect, publish, wait for the confirmations; the record (JSON)."""
    gateways = [Gateway(g, payloads[g["name"]]) for g in spec["gateways"]]
    connecting = asyncio.Semaphore(50)  # the broker's accept queue and password hashing: not all at once

    async def connect(g: Gateway) -> None:
        async with connecting:
            await g.connect(spec["host"], spec["port"])

    await asyncio.gather(*(connect(g) for g in gateways))
    print("ready", flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    first, rounds = int(spec["first"]), int(spec["upto"])
    if spec["mode"] == "burst":
        for g in gateways:  # a gateway's whole backlog in one write: the broker interleaves the connections
            g.publish(range(first, rounds))
    else:
        pace = float(spec["pace_s"])
        start = time.monotonic()
        slots = sorted((((r - first) * pace + i * pace / len(gateways)), i, r) for i, g in enumerate(gateways)
                       for r in range(first, rounds))
        for at, i, r in slots:
            delay = start + at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            gateways[i].publish(range(r, r + 1))
    deadline = time.monotonic() + float(spec["confirm_timeout_s"])
    while time.monotonic() < deadline and not all(g.done() for g in gateways):
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # late repeats
    record = orjson.dumps({g.name: g.record() for g in gateways}, option=orjson.OPT_NON_STR_KEYS)
    await asyncio.gather(*(g.conn.close(packets.disconnect()) for g in gateways if g.conn is not None))
    return record


def main(spec_path: str) -> None:
    spec = orjson.loads(Path(spec_path).read_bytes())
    payloads: dict[str, list[bytes]] = pickle.loads(Path(spec["payloads"]).read_bytes())
    Path(spec["out"]).write_bytes(asyncio.run(_run(spec, payloads)))


def launch(root: Path, tag: str, *, host: str, port: int, community: str, gateways: list[tuple[str, str, str]],
           payloads: Path, mode: str, first: int, upto: int, confirm_timeout_s: float = 60.0,
           processes: int = 1) -> Fleet:
    """Start ``gateways`` (name, incarnation, broker password; the account is the gateway's own)
    in ``processes`` publisher processes; returns once every client is subscribed. ``payloads``
    is a pickle of name → payloads (index ``i`` is seq ``i + 1``)."""
    fleet: Fleet = []
    for k in range(processes):
        part = gateways[k::processes]
        if not part:
            continue
        out = root / f"fleet-{tag}-{k}.json"
        spec = {"host": host, "port": port, "payloads": str(payloads), "mode": mode, "first": first, "upto": upto,
                "pace_s": 1.0, "confirm_timeout_s": confirm_timeout_s, "out": str(out),
                "gateways": [{"name": gw, "topic": wire.topic(community, gw, "telemetry"),
                              "cmd": wire.topic(community, gw, "cmd"), "incarnation": incarnation,
                              "username": BrokerAccount.gateway(community, gw).username, "password": password}
                             for gw, incarnation, password in part]}
        spec_path = root / f"fleet-{tag}-{k}.spec.json"
        spec_path.write_bytes(orjson.dumps(spec))
        proc = subprocess.Popen([sys.executable, "-m", "bench.ingest_fleet", str(spec_path)], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE)
        fleet.append((proc, out))
    for proc, _ in fleet:
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError("a fleet process did not get ready")
    return fleet


def go(fleet: Fleet) -> None:
    """Start publishing (every process at once)."""
    for proc, _ in fleet:
        assert proc.stdin is not None
        proc.stdin.write(b"go\n")
        proc.stdin.flush()


def collect(fleet: Fleet, timeout: float = 600) -> dict[str, Any]:
    """Wait for the processes; their records (gateway → published, confirmed, messages, repeats, behind) merged."""
    merged: dict[str, Any] = {}
    for proc, out in fleet:
        if proc.wait(timeout) != 0:
            raise RuntimeError(f"fleet process failed ({proc.returncode})")
        merged.update(orjson.loads(out.read_bytes()))
    return merged


if __name__ == "__main__":
    main(sys.argv[1])
