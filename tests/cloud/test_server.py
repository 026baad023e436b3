"""``cloud.server``: an ingest-only process (``guanjia cloud ingest``) serves ``GET /metrics``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import httpx

from guanjia.core import wire
from guanjia.core.ports import free_port, wait_for_port
from tests.support.ingest import publisher, register, telemetry, unique, wait_for
from tests.support.services import BrokerHandle

GUANJIA = str(Path(sys.executable).parent / "guanjia")


def _start_ingest(db: str, mqtt_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GUANJIA_DATABASE_URL": db, "GUANJIA_MQTT_URL": mqtt_url, "GUANJIA_MODE": "test"}
    with log.open("ab") as fh:
        return subprocess.Popen([GUANJIA, "cloud", "ingest", "--group", unique("g-"), "--client-id-prefix",
                                 unique("m-"), "--metrics-port", str(port), "--processes", "1"], env=env, stdout=fh,
                                stderr=subprocess.STDOUT)


async def test_ingest_process_serves_metrics(ingest_db: str, broker: BrokerHandle, tmp_path: Path) -> None:
    community, gateway = unique("c"), unique("gw")
    devices = [f"{gateway}d{i}" for i in range(3)]
    register(ingest_db, community, gateway, devices)
    port = free_port()
    log = tmp_path / "ingest.log"
    proc = _start_ingest(ingest_db, broker.admin_url, port, log)
    try:
        assert wait_for_port("127.0.0.1", port, timeout=30), log.read_text()
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=5) as client:

            async def subscribed() -> bool:
                text = (await client.get("/metrics")).text
                return "guanjia_ingest_broker_connected 1" in text

            await wait_for(subscribed, what="worker connected")
            with publisher(broker.admin_url) as pub:
                for seq in (1, 2):
                    pub.publish(wire.topic(community, gateway, "telemetry"),
                                telemetry(community, gateway, seq, devices))

            async def counted() -> bool:
                text = (await client.get("/metrics")).text
                return 'guanjia_ingest_messages_total{kind="telemetry"} 2' in text

            await wait_for(counted, what="two messages in /metrics", timeout=30)
            response = await client.get("/metrics")
            assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
            for name in ("guanjia_ingest_points_total 18", "guanjia_ingest_commit_seconds_count",
                         "guanjia_ingest_confirmations_total", "guanjia_ingest_confirmations_pending 0",
                         "guanjia_ingest_confirmations_unacked", "guanjia_ingest_lag_seconds",
                         "guanjia_ingest_queue_depth"):
                assert name in response.text, name
            assert (await client.get("/healthz")).status_code == 200
            assert (await client.get("/api/v1/devices")).status_code == 404  # no API here
            refused = await client.post("/metrics")
            assert (refused.status_code, refused.headers["allow"]) == (405, "GET, HEAD")
            head = await client.head("/metrics")
            assert (head.status_code, head.content) == (200, b"")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
