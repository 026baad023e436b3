"""Simulated gateways for the ingest matrix (``python -m bench.ingest_fleet SPEC``), one process.

Why a separate process: hundreds of gateways, each with its **own broker account and MQTT
connection** (as real gateways have: the broker's per-client queues, ACL checks and fan-out of
``cmd`` confirmations are part of what is measured), publishing from the bench's own process
would compete with its database polling for one GIL. The bench starts two of these, each with a
slice of the gateways.

Each gateway subscribes to its own ``…/cmd`` topic and records when each seq was first
confirmed (``stored``), how many confirmation messages it got, how many named a seq it had
already seen confirmed, and how many carried the ``behind`` hint. Protocol with the parent:
prints ``ready`` once every client is subscribed, waits for a line on stdin, publishes payloads
``first`` to ``upto`` (``burst``: every gateway's messages as fast as the clients take them, round by round;
``paced``: one message per gateway per ``pace_s``, gateways spread over the period), waits up to
``confirm_timeout_s`` for every seq to be confirmed and writes its record as JSON to ``out``.
"""

from __future__ import annotations

import pickle
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from cloud.registry.broker import BrokerAccount
from guanjia.core import wire

Fleet = list[tuple[subprocess.Popen[bytes], Path]]
"""Running publisher processes and the file each writes its record to."""


class Gateway:
    def __init__(self, spec: dict[str, Any], host: str, port: int, payloads: list[bytes]) -> None:
        self.name: str = spec["name"]
        self.topic: str = spec["topic"]
        self.cmd: str = spec["cmd"]
        self.incarnation: str = spec["incarnation"]
        self.payloads = payloads
        self.published: dict[int, float] = {}
        self.confirmed: dict[int, float] = {}
        self.messages = 0
        self.repeats = 0
        self.behind = 0
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{self.name}", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(spec["username"], spec["password"])
        self.client.max_inflight_messages_set(100)
        self.client.on_message = self._on_message
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_connect = lambda client, *_: client.subscribe(self.cmd, qos=1)
        self.client.connect(host, port, 60)
        self.client.loop_start()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        now = time.time()
        payload = bytes(message.payload)
        ranges = wire.parse_stored(payload, self.incarnation) or []
        with self.lock:
            self.messages += 1
            self.behind += wire.stored_behind(payload)
            for first, last in ranges:
                for seq in range(first, last + 1):
                    if seq in self.confirmed:
                        self.repeats += 1
                    else:
                        self.confirmed[seq] = now

    def publish(self, index: int) -> None:
        seq = index + 1
        self.published[seq] = time.time()
        self.client.publish(self.topic, self.payloads[index], qos=1)

    def done(self) -> bool:
        with self.lock:
            return len(self.confirmed) >= len(self.published)

    def record(self) -> dict[str, Any]:
        with self.lock:
            return {"published": self.published, "confirmed": self.confirmed, "messages": self.messages,
                    "repeats": self.repeats, "behind": self.behind}


def main(spec_path: str) -> None:
    spec = orjson.loads(Path(spec_path).read_bytes())
    payloads: dict[str, list[bytes]] = pickle.loads(Path(spec["payloads"]).read_bytes())
    gateways = [Gateway(g, spec["host"], spec["port"], payloads[g["name"]]) for g in spec["gateways"]]
    for g in gateways:
        if not g.subscribed.wait(60):
            raise SystemExit(f"{g.name}: no SUBACK")
    print("ready", flush=True)
    sys.stdin.readline()
    first, rounds = int(spec["first"]), int(spec["upto"])
    if spec["mode"] == "burst":
        for r in range(first, rounds):
            for g in gateways:
                g.publish(r)
    else:
        pace = float(spec["pace_s"])
        start = time.monotonic()
        slots = sorted((((r - first) * pace + i * pace / len(gateways)), i, r) for i, g in enumerate(gateways)
                       for r in range(first, rounds))
        for at, i, r in slots:
            delay = start + at - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            gateways[i].publish(r)
    deadline = time.monotonic() + float(spec["confirm_timeout_s"])
    while time.monotonic() < deadline and not all(g.done() for g in gateways):
        time.sleep(0.05)
    time.sleep(0.5)  # late repeats
    Path(spec["out"]).write_bytes(orjson.dumps({g.name: g.record() for g in gateways},
                                               option=orjson.OPT_NON_STR_KEYS))
    for g in gateways:
        g.client.disconnect()
        g.client.loop_stop()


def launch(root: Path, tag: str, *, host: str, port: int, community: str, gateways: list[tuple[str, str, str]],
           payloads: Path, mode: str, first: int, upto: int, confirm_timeout_s: float = 60.0,
           processes: int = 2) -> Fleet:
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
