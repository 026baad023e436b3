"""Crashes and outages lose nothing: a SIGKILLed worker, a restarted database; ACLs hold."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from cloud.db.migrate import migrate
from guanjia.app.stack import PostgresServer
from guanjia.core import wire
from guanjia.core.settings import MqttUrl
from tests.support.ingest import (
    Publisher,
    publisher,
    register,
    running_worker,
    scalar,
    telemetry,
    unique,
    wait_for,
)
from tests.support.services import BrokerHandle

GUANJIA = str(Path(sys.executable).parent / "guanjia")


def _start_ingest(db: str, mqtt_url: str, client_prefix: str, group: str, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GUANJIA_DATABASE_URL": db, "GUANJIA_MQTT_URL": mqtt_url, "GUANJIA_MODE": "test"}
    with log.open("ab") as fh:
        return subprocess.Popen(
            [GUANJIA, "cloud", "ingest", "--client-id-prefix", client_prefix, "--group", group, "--batch-points",
             "300", "--receive-maximum", "16", "--metrics-port", "0", "--processes", "1"],
            env=env, stdout=fh, stderr=subprocess.STDOUT)


async def test_worker_killed_mid_batch_loses_nothing(ingest_db: str, broker: BrokerHandle, tmp_path: Path) -> None:
    community, gateway = unique("c"), unique("gw")
    devices = [f"d{i}" for i in range(50)]
    register(ingest_db, community, gateway, devices)
    prefix, group, log = unique("kill-"), unique("g-"), tmp_path / "worker.log"
    proc = _start_ingest(ingest_db, broker.admin_url, prefix, group, log)
    try:
        messages = 80
        with publisher(broker.admin_url) as pub:
            await _until_consuming(pub, ingest_db, community, gateway, devices)  # seq 0 is the probe
            for seq in range(1, messages):
                pub.publish(wire.topic(community, gateway, "telemetry"), telemetry(community, gateway, seq, devices))

        async def some() -> bool:
            return bool(await scalar(ingest_db, "SELECT count(*) FROM telemetry") > 0)

        await wait_for(some, what="first commit")
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        partial = await scalar(ingest_db, "SELECT count(*) FROM telemetry")
        proc = _start_ingest(ingest_db, broker.admin_url, prefix, group, log)  # same client id: session resumes
        total = messages * len(devices) * 3

        async def everything() -> bool:
            return bool(await scalar(ingest_db, "SELECT count(*) FROM telemetry") >= total)

        await wait_for(everything, timeout=60, what=f"all {total} points after restart (log: {log})")
        await asyncio.sleep(0.5)
        assert await scalar(ingest_db, "SELECT count(*) FROM telemetry") == total
        assert await scalar(ingest_db, "SELECT count(*) FROM ingest_batches") == messages
        assert partial <= total
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()


async def _until_consuming(pub: Publisher, url: str, community: str, gateway: str, devices: list[str]) -> None:
    """Publish the probe (seq 0) until a worker stored it: messages sent before the shared
    subscription exists have no subscriber and the broker drops them."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pub.publish(wire.topic(community, gateway, "telemetry"), telemetry(community, gateway, 0, devices))
        for _ in range(10):
            if await scalar(url, "SELECT count(*) FROM ingest_batches") > 0:
                return
            await asyncio.sleep(0.1)
    raise AssertionError("the ingest worker never started consuming")


async def test_database_restart_mid_ingest_loses_nothing(own_pg: PostgresServer, broker: BrokerHandle) -> None:
    url = own_pg.dsn
    migrate(url)
    community, gateway = unique("c"), unique("gw")
    devices = [f"d{i}" for i in range(20)]
    register(url, community, gateway, devices)
    async with running_worker(url, broker.admin_url, batch_points=200) as worker:
        with publisher(broker.admin_url) as pub:
            for seq in range(1, 21):
                pub.publish(wire.topic(community, gateway, "telemetry"), telemetry(community, gateway, seq, devices))
            await asyncio.sleep(0.3)
            await asyncio.to_thread(own_pg.kill)  # crash: immediate shutdown, in-flight transactions lost
            for seq in range(21, 41):
                pub.publish(wire.topic(community, gateway, "telemetry"), telemetry(community, gateway, seq, devices))
            await asyncio.sleep(1.5)
            await asyncio.to_thread(own_pg.start)

        async def everything() -> bool:
            try:
                return bool(await scalar(url, "SELECT count(*) FROM ingest_batches") >= 40)
            except psycopg.OperationalError:
                return False

        await wait_for(everything, timeout=90, what="all 40 messages after the database restart")
        await asyncio.sleep(0.5)
        assert worker.m_retries.total() >= 0
    assert await scalar(url, "SELECT count(*) FROM telemetry") == 40 * 20 * 3
    assert await scalar(url, "SELECT count(*) FROM ingest_batches") == 40


def test_gateway_cannot_publish_under_another_gateways_topics(broker: BrokerHandle) -> None:
    community = unique("c")
    _, url_a = broker.add_gateway(community, "gw-a")
    received: list[str] = []
    admin = MqttUrl.parse(broker.admin_url)
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("spy-"), protocol=mqtt.MQTTv5)
    sub.username_pw_set(admin.username, admin.password)
    sub.on_message = lambda c, u, m: received.append(m.topic)
    sub.connect(admin.host, admin.port)
    sub.subscribe(f"guanjia/v1/{community}/#", qos=1)
    sub.loop_start()
    try:
        time.sleep(0.3)
        with publisher(url_a) as pub:
            denied = pub.publish(wire.topic(community, "gw-b", "telemetry"), b"{}")
            pub.publish(wire.topic("other-community", "gw-a", "telemetry"), b"{}")
            pub.publish(wire.topic(community, "gw-a", "telemetry"), b"{}")
        deadline = time.monotonic() + 3
        while not received and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
    finally:
        sub.disconnect()
        sub.loop_stop()
    assert received == [wire.topic(community, "gw-a", "telemetry")]
    assert denied.rc == mqtt.MQTT_ERR_SUCCESS  # the broker drops it silently (v5 PUBACK 0x87 at most)


def test_gateway_add_cli_produces_working_credentials(ingest_db: str, own_broker: BrokerHandle) -> None:
    import json

    community, gateway = unique("c"), unique("gw")
    server = own_broker.server
    pid = server.pid()
    assert pid is not None
    result = subprocess.run(
        [GUANJIA, "cloud", "gateway", "add", community, gateway, "--trusted", "--json", "--database-url", ingest_db,
         "--passwd-file", str(server.directory / "passwd"), "--acl-file", str(server.directory / "acl"),
         "--broker-pid", str(pid)], capture_output=True, text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    creds = json.loads(result.stdout)
    time.sleep(0.5)  # SIGHUP reload
    url = f"mqtt://{creds['username']}:{creds['password']}@{server.host}:{server.port}"
    with publisher(url) as pub:
        info = pub.publish(wire.topic(community, gateway, "status"), b'{"state": "online"}')
        assert info.is_published()
    bad = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=unique("bad-"), protocol=mqtt.MQTTv5)
    bad.username_pw_set(creds["username"], "wrong-password")
    codes: list[object] = []
    bad.on_connect = lambda c, u, f, rc, p: codes.append(rc)
    bad.connect(server.host, server.port)
    deadline = time.monotonic() + 5
    while not codes and time.monotonic() < deadline:
        bad.loop(timeout=0.1)
    bad.disconnect()
    assert codes
    assert getattr(codes[0], "is_failure", False)  # wrong password refused
    listed = subprocess.run([GUANJIA, "cloud", "gateway", "list", "--json", "--database-url", ingest_db],
                            capture_output=True, text=True, check=True, timeout=60)
    rows = json.loads(listed.stdout)
    assert [(r["community"], r["code"], r["trusted"]) for r in rows] == [(community, gateway, True)]
    assert rows[0]["broker_username"] == creds["username"]


async def test_gracefully_stopped_worker_leaves_no_stranded_share(ingest_db: str, broker: BrokerHandle) -> None:
    """Mosquitto keeps routing a share group's messages to offline persistent members; a worker
    stopped on purpose drains and ends its session, so its peers receive everything."""
    community, gateway = unique("c"), unique("gw")
    register(ingest_db, community, gateway, ["d1"])
    group = unique("g-")
    async with running_worker(ingest_db, broker.admin_url, group=group, client_id=unique("wa-")):
        async with running_worker(ingest_db, broker.admin_url, group=group, client_id=unique("wb-")):
            pass  # b stops gracefully
        with publisher(broker.admin_url) as pub:
            for seq in range(1, 21):
                pub.publish(wire.topic(community, gateway, "telemetry"), telemetry(community, gateway, seq, ["d1"]))

        async def everything() -> bool:
            return bool(await scalar(ingest_db, "SELECT count(*) FROM ingest_batches") == 20)

        await wait_for(everything, timeout=15, what="all 20 messages at the remaining worker")
