"""The edge side of configuration rollout, without a cloud: pushes published straight on the
gateway's ``cmd`` topic to a real agent subprocess polling a pymodbus server.

Covers: a push applied in-process and reported ``good`` in the retained status; a push whose
files do not match its version refused (``digest_mismatch``) with the running version kept; the
last good version kept on disk and run after a restart while the broker is unreachable."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from device_profiles import find_profile
from guanjia.core.ports import free_port
from guanjia.core.wire import topic
from guanjia.core.wire_config import ConfigPush, bundle_version, encode_config_push
from tests.support.edge.bundles import pump_bundle
from tests.support.edge.collector import Collector
from tests.support.edge.process import AgentProcess
from tests.support.edge.servers import ProfileServer, Unit
from tests.support.services import BrokerHandle

PUMP = find_profile("vfd-pump")
COMMUNITY, GATEWAY = "managed", "gw-m"


@pytest.fixture
def agents() -> Iterator[list[AgentProcess]]:
    made: list[AgentProcess] = []
    yield made
    for a in made:
        a.stop()


def config_reports(wire: Collector) -> list[dict[str, Any]]:
    return [s["health"]["config"] for s in wire.status if isinstance(s.get("health"), dict)
            and "config" in s["health"]]


async def test_push_applies_and_the_last_good_version_survives_a_restart_without_the_cloud(
        broker: BrokerHandle, tmp_path: Path, agents: list[AgentProcess]) -> None:
    _, url = broker.add_gateway(COMMUNITY, GATEWAY)
    local, pushed = Unit(1, PUMP, {"outlet_pressure": 2.5}), Unit(7, PUMP, {"outlet_pressure": 3.5})
    async with ProfileServer([local, pushed]) as server, Collector(broker.admin_url, COMMUNITY, GATEWAY) as wire:
        agent = AgentProcess(tmp_path, url, COMMUNITY, GATEWAY, server.port, [
            {"id": "pump-1", "profile": "vfd-pump", "unit": 1, "report_by_exception": False}]).start()
        agents.append(agent)
        await wire.wait_for(lambda: any(r.get("state") == "local" for r in config_reports(wire)), timeout=30)
        cmd = topic(COMMUNITY, GATEWAY, "cmd")

        # files that do not match the version: refused, nothing changes
        bundle = pump_bundle(server.port, [("pump-7", 7)])
        await wire.publish(cmd, encode_config_push(ConfigPush("p-0", "0123456789ab", bundle), ts=0))
        await wire.wait_for(lambda: any(r["reason"] == "digest_mismatch" for r in config_reports(wire)))
        assert config_reports(wire)[-1]["running"] is None

        # a real push: applied in-process, on probation, then good
        version = bundle_version(bundle)
        await wire.publish(cmd, encode_config_push(ConfigPush("p-1", version, bundle, probation_s=1.5), ts=0))
        await wire.wait_for(lambda: any(r["state"] == "good" and r["running"] == version
                                        for r in config_reports(wire)), timeout=30)
        states = [r["state"] for r in config_reports(wire)]
        assert states.index("probation") < len(states) - 1
        assert (tmp_path / "managed" / "versions" / version / "devices.yaml").exists()
        state = orjson.loads((tmp_path / "managed" / "state.json").read_bytes())
        assert state["good"] == version
        assert state["trying"] is None
        await wire.wait_for(lambda: any(r["device"] == "pump-7" for r in wire.items("telemetry")), timeout=20)
        agent.stop()

    # the cloud is unreachable now (the broker URL points nowhere): the agent starts on its last good version
    doc = yaml.safe_load(agent.config.read_text())
    doc["uplink"]["url"] = f"mqtt://127.0.0.1:{free_port()}"
    agent.config.write_text(yaml.safe_dump(doc))
    local.requests = pushed.requests = 0
    async with ProfileServer([local, pushed], port=server.port):
        agent.start()
        async with asyncio.timeout(30):
            while pushed.requests < 3:
                await asyncio.sleep(0.2)
        assert local.requests == 0  # the agent file's own pump-1 is not what runs
    agent.stop()
    assert "1 Modbus devices" in agent.log.read_text()
