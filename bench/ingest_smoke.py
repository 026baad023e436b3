"""``ingest-smoke``: simulated readings through edge → broker → cloud → database, counted exactly.

The whole path runs as separate processes, as in production: simulators (Modbus + MQTT devices),
one edge agent, the cloud ingest service, a private PostgreSQL and Mosquitto. A subscriber with
the admin account sees every telemetry batch the agent publishes; ``sent`` is the number of
points in distinct sequence numbers seen there, ``stored`` the rows in the database, and
``duplicates`` the rows stored more than once (must be 0).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from guanjia.app.procs import Supervisor, guanjia_cmd
from guanjia.app.stack.local import ADMIN_USER, LocalStack
from guanjia.core.settings import MqttUrl

COMMUNITY = "bench"
GATEWAY = "gw-1"


class _Counter:
    """Counts points per distinct (gateway, seq) at the broker, as the cloud should store them."""

    def __init__(self, url: str, topic: str) -> None:
        u = MqttUrl.parse(url)
        self.seqs: dict[int, int] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="ingest-smoke-counter")
        self.client.username_pw_set(u.username, u.password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
        self.client.connect(u.host, u.port)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        doc = orjson.loads(msg.payload)
        points = sum(len(r.get("values", {})) for r in doc.get("readings", []))
        with self.lock:
            self.seqs[int(doc["seq"])] = points

    @property
    def points(self) -> int:
        with self.lock:
            return sum(self.seqs.values())

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def _stored(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as conn:
        row = conn.execute(
            "SELECT count(*), count(*) - count(DISTINCT (time, device_id, metric_id)) FROM ("
            " SELECT time, device_id, metric_id FROM telemetry UNION ALL"
            " SELECT time, device_id, metric_id FROM telemetry_text) t"
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def _agent_yaml(path: Path, url: str) -> None:
    path.write_text(
        f"gateway: {GATEWAY}\ncommunity: {COMMUNITY}\nuplink:\n  url: {url}\noutbox:\n  path: outbox.db\n"
        "links: []\nmqtt_devices:\n  devices: []\nrules:\n  builtin: true\n  state_path: rules-state.json\n"
        "health:\n  heartbeat_s: 5\n"
    )


def run(quick: bool = False) -> dict[str, Any]:
    from cloud.db.migrate import migrate
    from cloud.registry.provisioning import provision_gateway

    seconds = 15.0 if quick else 45.0
    devices = 20 if quick else 60
    root = Path(tempfile.mkdtemp(prefix="guanjia-smoke-"))
    root.chmod(0o755)
    stack = LocalStack(root / "run")
    env = stack.up()
    supervisor = Supervisor(root / "logs", env={"GUANJIA_MODE": "test", **env})
    counter: _Counter | None = None
    try:
        database_url = env["GUANJIA_DATABASE_URL"]
        migrate(database_url)
        _, account = provision_gateway(database_url, COMMUNITY, GATEWAY, trusted=True, auto_register=True,
                                       stack=stack)
        broker = stack.broker()
        admin, devices_account = stack.account(ADMIN_USER), stack.devices_account(COMMUNITY)
        assert admin is not None
        counter = _Counter(broker.url_for(admin), f"guanjia/v1/{COMMUNITY}/{GATEWAY}/telemetry")
        inventory = root / "inventory.json"
        supervisor.start("simulators", guanjia_cmd(
            "sim", "run", "--devices", str(devices), "--community", COMMUNITY, "--inventory", str(inventory),
            "--mqtt-url", broker.url_for(devices_account), "--seed", "3"))
        deadline = time.monotonic() + 60
        while not inventory.exists():
            if supervisor.dead() or time.monotonic() > deadline:
                raise RuntimeError("simulators did not start: " + supervisor.children[0].tail())
            time.sleep(0.2)
        cloud = supervisor.start("cloud", guanjia_cmd("cloud", "serve", "--no-api", "--workers", "1"))
        # MQTT brokers keep messages only for subscriptions that exist: start the agent once the
        # ingest worker's (persistent, shared) subscription is in place
        deadline = time.monotonic() + 60
        while "session present" not in cloud.tail(20000):
            if supervisor.dead() or time.monotonic() > deadline:
                raise RuntimeError("cloud ingest did not connect: " + cloud.tail())
            time.sleep(0.2)
        agent = root / "agent.yaml"
        _agent_yaml(agent, broker.url_for(account))
        started = time.monotonic()
        supervisor.start("edge", guanjia_cmd("edge", "run", "--config", str(agent), "--inventory", str(inventory)))
        time.sleep(seconds)
        # stop the agent (SIGTERM: it flushes what it has) and the devices; the cloud keeps
        # running until it has stored everything the agent published
        edge = next(c for c in supervisor.children if c.name == "edge")
        edge.process.terminate()
        try:
            edge.process.wait(30)
        except subprocess.TimeoutExpired:
            supervisor.kill("edge")
        supervisor.kill("simulators")
        elapsed = time.monotonic() - started
        sent = counter.points
        stored = duplicates = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            stored, duplicates = _stored(database_url)
            if stored >= sent:
                break
            time.sleep(0.5)
        return {
            "sent": sent,
            "stored": stored,
            "duplicates": duplicates,
            "seconds": round(elapsed, 2),
            "devices": devices,
            "messages": len(counter.seqs),
        }
    finally:
        if counter is not None:
            counter.close()
        supervisor.stop()
        stack.down()
        if not os.environ.get("GUANJIA_BENCH_KEEP"):
            shutil.rmtree(root, ignore_errors=True)
