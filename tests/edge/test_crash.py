"""SIGKILL of the agent process in the middle of its batches loses nothing: every committed seq
reaches the cloud (or is still in the outbox), and a seq seen twice carries the same content."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import yaml

from tests.support.edge.collector import Collector
from tests.support.edge.profiles import PUMP_VALUES, TEST_PUMP, write_profile
from tests.support.edge.servers import ProfileServer, Unit
from tests.support.services import BrokerHandle

ROOT = Path(__file__).resolve().parents[2]


def start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    with open(log, "ab") as out:
        return subprocess.Popen([sys.executable, "-m", "guanjia.app.cli.main", "edge", "run", "--config", str(config)],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


def outbox_state(path: Path) -> tuple[int, set[int]]:
    db = sqlite3.connect(path)
    try:
        next_seq = db.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0]
        stored = {row[0] for row in db.execute("SELECT seq FROM messages")}
    finally:
        db.close()
    return int(next_seq) - 1, stored


async def test_sigkill_mid_batch_loses_nothing(tmp_path: Path, broker: BrokerHandle) -> None:
    community, gateway = f"c{uuid.uuid4().hex[:6]}", f"gw{uuid.uuid4().hex[:6]}"
    _, url = broker.add_gateway(community, gateway)
    units = [Unit(i + 1, TEST_PUMP, dict(PUMP_VALUES)) for i in range(5)]
    profile = write_profile(tmp_path, period_s=0.05)
    config = tmp_path / "agent.yaml"
    log = tmp_path / "agent.log"
    async with ProfileServer(units) as server, Collector(broker.admin_url, community, gateway) as cloud:
        config.write_text(yaml.safe_dump({
            "gateway": gateway, "community": community,
            "uplink": {"url": url, "reconnect_initial_s": 0.1, "reconnect_max_s": 1.0},
            "outbox": {"path": "outbox.db", "flush_interval_s": 0.05, "batch_max_items": 20,
                       "synchronous": "normal"},
            "links": [{"type": "tcp", "host": "127.0.0.1", "port": server.port, "timeout_s": 0.5, "devices": [
                {"id": f"pump-{i}", "profile": str(profile), "unit": i + 1, "report_by_exception": False}
                for i in range(5)]}],
            "rules": {"builtin": False, "state_path": "rules.json"},
        }))
        agent = start_agent(config, log)
        try:
            await cloud.wait_for(lambda: len(cloud.of("telemetry")) >= 20, timeout=30)
            os.kill(agent.pid, signal.SIGKILL)  # mid-stream: batches committed, some in flight
            agent.wait(10)
            killed_last, _ = outbox_state(tmp_path / "outbox.db")
            agent = start_agent(config, log)
            # the new process resends what was unacked and goes on with seq after the last committed one
            await cloud.wait_for(lambda: max(e.seq for e in cloud.envelopes) > killed_last + 5, timeout=30)
            agent.send_signal(signal.SIGTERM)
            assert agent.wait(20) == 0, log.read_text()[-3000:]
        finally:
            if agent.poll() is None:
                agent.kill()
                agent.wait(10)
        last, still_stored = outbox_state(tmp_path / "outbox.db")
        assert last > killed_last
        await cloud.wait_for(lambda: {e.seq for e in cloud.envelopes} | still_stored >= set(range(1, last + 1)))
    cloud.check_sequence(last, still_stored)
    assert any(s["state"] == "offline" for s in cloud.status)
