"""The agent with a simulated community's meter buses, end to end over real sockets and a real
broker: the simulator's inventory becomes DL/T 645 and CJ/T 188 links, every meter reports, and a
meter that falls silent costs only itself."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import orjson

from edge.agent import Agent
from edge.config import AgentConfig, OutboxConfig, RulesConfig, UplinkConfig
from edge.inventory import merge_inventory
from guanjia.core.wire import topic
from simulators.fleet import DeviceSpec, FleetSpec
from simulators.runner import SimulatedFleet
from tests.support.edge.collector import Collector
from tests.support.services import BrokerHandle

FLEET = FleetSpec(community="c", devices=[
    DeviceSpec(id="b1-submeter-1", profile="dlt645-3phase", building="b1"),
    DeviceSpec(id="b1-submeter-2", profile="dlt645-3phase", building="b1"),
    DeviceSpec(id="b1-submeter-3", profile="dlt645-3phase", building="b1", address="202400000003"),
    DeviceSpec(id="b1-water-1", profile="cjt188-water", building="b1"),
    DeviceSpec(id="b1-meter-3", profile="eastron-sdm120", building="b1"),
])


def fast(config: AgentConfig) -> AgentConfig:
    links = [link.model_copy(update={"timeout_s": 0.3, "offline_after": 2, "backoff_max_s": 1, "devices": [
        d.model_copy(update={"period_s": 0.3, "report_by_exception": False}) for d in link.devices]})
        for link in config.links]
    return config.model_copy(update={"links": links})


async def test_meters_from_the_inventory_report_and_a_silent_one_costs_only_itself(
        tmp_path: Path, broker: BrokerHandle) -> None:
    community, gateway = f"c{uuid.uuid4().hex[:6]}", f"gw{uuid.uuid4().hex[:6]}"
    _, url = broker.add_gateway(community, gateway)
    fleet_spec = FLEET.model_copy(update={"community": community})
    async with SimulatedFleet(fleet_spec) as fleet, Collector(broker.admin_url, community, gateway) as cloud:
        inventory = tmp_path / "inventory.json"
        inventory.write_text(json.dumps(fleet.inventory), encoding="utf-8")
        base = AgentConfig(gateway=gateway, community=community,
                           uplink=UplinkConfig(url=url, reconnect_initial_s=0.1, reconnect_max_s=1.0),
                           outbox=OutboxConfig(path=tmp_path / "outbox.db", flush_interval_s=0.1,
                                               synchronous="normal"),
                           rules=RulesConfig(builtin=False, state_path=tmp_path / "rules.json"))
        config = fast(merge_inventory(base, inventory))
        assert sorted((link.protocol, len(link.devices)) for link in config.links) == [
            ("cjt188", 1), ("dlt645", 3), ("modbus", 1)]
        async with Agent(config) as agent:
            def reported(device: str) -> int:
                return sum(1 for r in cloud.items("telemetry") if r["device"] == device and r["quality"] == "good")

            everyone = [d.id for d in FLEET.devices]
            await cloud.wait_for(lambda: all(reported(d) >= 2 for d in everyone), timeout=20)
            water = next(r for r in cloud.items("telemetry") if r["device"] == "b1-water-1")
            assert water["values"]["valve"] == 0
            assert water["values"]["water_total"] > 0
            submeter = next(r for r in cloud.items("telemetry")
                            if r["device"] == "b1-submeter-3" and "voltage_l1" in r["values"])
            assert 180 < submeter["values"]["voltage_l1"] < 260

            fleet.inject("b1-submeter-2", "offline")
            await cloud.wait_for(lambda: any(e["type"] == "device_offline" and e["device"] == "b1-submeter-2"
                                             for e in cloud.items("events")), timeout=20)
            before = {d: reported(d) for d in everyone}
            await cloud.wait_for(lambda: all(reported(d) >= before[d] + 3 for d in everyone
                                             if d != "b1-submeter-2"), timeout=20)
            await cloud.publish(topic(community, gateway, "cmd"), orjson.dumps(
                {"id": "w1", "device": "b1-water-1", "point": "valve", "value": 1}))
            await cloud.wait_for(lambda: any(r["id"] == "w1" for r in cloud.replies))
            assert next(r for r in cloud.replies if r["id"] == "w1")["reason"] == "not_writable"
            # a pushed version's probation sees each meter by id, not only a count (issue 19)
            states = agent.device_states()
            assert states["b1-submeter-2"] == "offline"
            assert all(states[d] == "online" for d in everyone if d != "b1-submeter-2")
            health = agent.health()
            assert health["devices_offline"] == 1
            assert health["devices_online"] == len(everyone) - 1
            assert sum(bus["meters"] for bus in health["meter_buses"].values()) == 4
