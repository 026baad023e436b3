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
from edge.config import AgentConfig, load_config
from edge.managed import ConfigManager, ManagedStore, effective_config
from guanjia.core.errors import ConfigError
from guanjia.core.ports import free_port
from guanjia.core.wire import topic
from guanjia.core.wire_config import ConfigPush, bundle_version, encode_config_push
from tests.support.edge.bundles import pressure_rule, pump_bundle
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
        # the swap kept the outbox: one incarnation, every sequence number from before and after it
        assert len({e.incarnation for e in wire.envelopes}) == 1
        wire.check_sequence(max(e.seq for e in wire.envelopes))
        assert any(r["device"] == "pump-1" for r in wire.items("telemetry"))  # polled before the push
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


class FakeAgent:
    """The manager's view of an agent (:class:`edge.managed.Reconfigurable`), for the decisions alone."""

    def __init__(self) -> None:
        self.states = {"pump-1": "online"}
        self.errors = 0
        self.applied: list[AgentConfig] = []

    async def reconfigure(self, config: AgentConfig) -> None:
        self.applied.append(config)

    def device_states(self) -> dict[str, str]:
        return dict(self.states)

    def rule_errors(self) -> int:
        return self.errors


def base_config(tmp_path: Path) -> AgentConfig:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump({"gateway": GATEWAY, "community": COMMUNITY, "uplink": {"url": "mqtt://x:1"},
                                    "rules": {"builtin": False}, "managed": {"probation_s": 0.6}}))
    return load_config(path)


async def settled(manager: ConfigManager, state: str) -> None:
    """Until the version on probation is judged (loading a bundle takes a while on a busy box)."""
    async with asyncio.timeout(20):
        while manager.report()["state"] != state:
            await asyncio.sleep(0.05)


def push_doc(push_id: str, bundle: dict[str, str]) -> dict[str, Any]:
    doc: dict[str, Any] = orjson.loads(encode_config_push(ConfigPush(push_id, bundle_version(bundle), bundle), ts=0))
    return doc


async def test_rule_errors_on_probation_roll_back_and_a_busy_push_is_refused(tmp_path: Path) -> None:
    base = base_config(tmp_path)
    agent, changes = FakeAgent(), []
    manager = ConfigManager(base, {}, agent, now_ms=lambda: 1, status_changed=lambda: changes.append(1))
    good = pump_bundle(1502, [("pump-1", 1)])
    await manager.on_push(push_doc("p-1", good))
    assert manager.report()["state"] == "probation"
    await manager.on_push(push_doc("p-2", {**good, "rules/a.yaml": pressure_rule("a", 1.0)}))
    assert (manager.report()["state"], manager.report()["reason"]) == ("refused", "busy")
    await settled(manager, "good")
    assert manager.report()["running"] == bundle_version(good)

    bad = {**good, "rules/a.yaml": pressure_rule("a", 1.0)}
    await manager.on_push(push_doc("p-3", bad))
    agent.errors = 3  # the new rules raise on evaluation
    await settled(manager, "rolled_back")
    report = manager.report()
    assert (report["state"], report["reason"], report["attempted"]) == ("rolled_back", "rules_failed",
                                                                        bundle_version(bad))
    assert report["running"] == bundle_version(good)
    assert len(agent.applied) == 3  # good, bad, good again
    assert changes  # every change was announced to the uplink


async def test_a_restart_during_probation_starts_from_the_last_good_version(tmp_path: Path) -> None:
    base = base_config(tmp_path)
    manager = ConfigManager(base, {}, FakeAgent(), now_ms=lambda: 1, status_changed=lambda: None)
    await manager.on_push(push_doc("p-1", pump_bundle(1502, [("pump-1", 1)])))
    await manager.close()  # the process ends on probation
    config, state = effective_config(base)
    assert config.links == []  # nothing had passed probation: the agent file's own devices
    again = ConfigManager(base, state, FakeAgent(), now_ms=lambda: 2, status_changed=lambda: None)
    report = again.report()
    assert (report["state"], report["reason"], report["running"]) == ("rolled_back", "restarted_in_probation", None)
    # an invalid bundle is refused with the edge validator's file:line, and nothing is applied
    agent = FakeAgent()
    third = ConfigManager(base, {}, agent, now_ms=lambda: 3, status_changed=lambda: None)
    await third.on_push(push_doc("p-9", {**pump_bundle(1502, [("pump-1", 1)]), "rules/x.yaml": "rules: [{id: x}]"}))
    assert third.report()["reason"] == "invalid_bundle"
    assert third.report()["detail"].startswith("rules/x.yaml:1:")
    assert agent.applied == []


def test_a_damaged_good_version_fails_edge_check_and_edge_run_falls_back(tmp_path: Path) -> None:
    base = base_config(tmp_path)
    bundle = pump_bundle(1502, [("pump-1", 1)])
    version = bundle_version(bundle)
    store = ManagedStore(base.managed.dir)
    store.unpack(ConfigPush("p-1", version, bundle))
    store.write_state({"good": version, "trying": None, "report": {}})
    config, _ = effective_config(base, strict=True)
    assert [d.id for link in config.links for d in link.devices] == ["pump-1"]
    profile = store.folder(version) / "profiles" / "pump.yaml"
    profile.write_text(profile.read_text().replace("address: 2000", "address: x"))
    with pytest.raises(ConfigError) as caught:
        effective_config(base, strict=True)  # guanjia edge check
    assert caught.value.issues[0].file == str(profile)
    assert caught.value.issues[0].field == "points.8.address"
    config, state = effective_config(base)  # guanjia edge run: the agent file's devices
    assert config.links == []
    assert state["good"] is None
