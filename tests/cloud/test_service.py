"""`CloudService` runs ingest + maintenance + API in one TaskGroup and stops cleanly; TimescaleDB path."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from cloud.db.migrate import migrate
from cloud.runtime.context import CloudConfig
from cloud.service import CloudService
from guanjia.core import wire
from guanjia.core.ports import free_port
from guanjia.core.settings import Settings
from tests.support.ingest import publisher, register, scalar, telemetry, unique, wait_for
from tests.support.services import BrokerHandle

SECRET = "test-secret-key-for-the-service-tests-0123456789"


async def test_cloud_service_ingests_serves_and_stops(ingest_db: str, broker: BrokerHandle) -> None:
    community, gateway = unique("c"), unique("gw")
    register(ingest_db, community, gateway, ["d1"])
    port = free_port()
    settings = Settings(mode="test", database_url=ingest_db, mqtt_url=broker.admin_url, secret_key=SECRET)
    config = CloudConfig.from_settings(settings, workers=2, api_port=port, group=unique("g-"),
                                       client_id_prefix=unique("s-"))
    async with CloudService(settings, config) as service:
        assert service.ctx is not None
        assert service.ctx.mode in ("plain", "timescale")
        async with httpx.AsyncClient() as client:
            for _ in range(100):
                try:
                    health = await client.get(f"http://127.0.0.1:{port}/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert health.status_code == 200, health.text
            assert health.json()["broker"]["ok"] is True
        await asyncio.sleep(0.5)
        with publisher(broker.admin_url) as pub:
            pub.publish(wire.topic(community, gateway, "telemetry"), telemetry(community, gateway, 1, ["d1"]))

        async def stored() -> bool:
            return bool(await scalar(ingest_db, "SELECT count(*) FROM telemetry") == 3)

        await wait_for(stored)
        async with httpx.AsyncClient() as client:
            metrics = (await client.get(f"http://127.0.0.1:{port}/metrics")).text
        assert "guanjia_ingest_points_total 3" in metrics
        service.stop()
        await service.wait()


def test_serve_cli_stops_on_sigterm(ingest_db: str, broker: BrokerHandle, tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "GUANJIA_MODE": "test", "GUANJIA_DATABASE_URL": ingest_db,
           "GUANJIA_MQTT_URL": broker.admin_url, "GUANJIA_SECRET_KEY": SECRET}
    proc = subprocess.Popen([str(Path(sys.executable).parent / "guanjia"), "cloud", "serve", "--api-port", str(port),
                             "--group", unique("g-"), "--client-id-prefix", unique("cli-")], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        ok = False
        while time.monotonic() < deadline and not ok:
            try:
                ok = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
            except httpx.TransportError:
                time.sleep(0.2)
        assert ok
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.timescale
def test_timescale_storage(require_timescaledb: None, db_url: str) -> None:
    url = db_url
    migrate(url)
    with psycopg.connect(url) as conn:
        mode = conn.execute("SELECT value FROM schema_meta WHERE key = 'storage_mode'").fetchone()
        hyper = conn.execute("SELECT count(*) FROM timescaledb_information.hypertables "
                             "WHERE hypertable_name = 'telemetry_readings'").fetchone()
        compressed = conn.execute("SELECT segmentby_column_index IS NOT NULL FROM "
                                  "timescaledb_information.compression_settings WHERE hypertable_name = "
                                  "'telemetry_readings' AND attname = 'device_id'").fetchone()
        jobs = conn.execute("SELECT count(*) FROM timescaledb_information.jobs "
                            "WHERE hypertable_name = 'telemetry_readings'").fetchone()
        view = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'telemetry'").fetchone()
    assert mode == ("timescale",)
    assert hyper == (1,)
    assert compressed == (True,)
    assert jobs == (2,)  # compression + retention
    assert view == ("v",)
