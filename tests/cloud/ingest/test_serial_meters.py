"""DL/T 645 sub-meters and a CJ/T 188 water meter, simulated on meter buses, read by the agent and
stored by the cloud's ingest worker unchanged: real sockets, Mosquitto and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.agent import Agent
from edge.config import AgentConfig, OutboxConfig, RulesConfig, UplinkConfig
from edge.inventory import merge_inventory
from simulators.fleet import DeviceSpec, FleetSpec
from simulators.runner import SimulatedFleet
from tests.support.ingest import register, running_worker, scalar, unique, wait_for
from tests.support.services import BrokerHandle

DEVICES = [("b1-submeter-1", "dlt645-3phase"), ("b1-submeter-2", "dlt645-3phase"), ("b1-water-1", "cjt188-water")]


@pytest.fixture
def ingest_db(module_db: str) -> str:
    return module_db


async def test_meter_readings_land_in_telemetry(ingest_db: str, broker: BrokerHandle, tmp_path: Path) -> None:
    community, gateway = unique("c"), unique("gw")
    register(ingest_db, community, gateway, [d for d, _ in DEVICES])
    _, gw_url = broker.add_gateway(community, gateway)
    spec = FleetSpec(community=community, devices=[DeviceSpec(id=d, profile=p, building="b1") for d, p in DEVICES])
    async with SimulatedFleet(spec) as fleet, running_worker(ingest_db, broker.admin_url):
        inventory = tmp_path / "inventory.json"
        inventory.write_text(json.dumps(fleet.inventory), encoding="utf-8")
        base = AgentConfig(gateway=gateway, community=community,
                           uplink=UplinkConfig(url=gw_url, reconnect_initial_s=0.1, reconnect_max_s=1.0),
                           outbox=OutboxConfig(path=tmp_path / "outbox.db", flush_interval_s=0.1, synchronous="normal"),
                           rules=RulesConfig(builtin=True, state_path=tmp_path / "rules.json", reload=False))
        config = merge_inventory(base, inventory)
        config = config.model_copy(update={"links": [link.model_copy(update={"devices": [
            d.model_copy(update={"period_s": 0.5}) for d in link.devices]}) for link in config.links]})
        async with Agent(config):
            async def value(device: str, metric: str) -> float | None:
                got = await scalar(ingest_db, "SELECT value FROM telemetry t JOIN metrics m ON m.id = t.metric_id "
                                   "JOIN devices d ON d.id = t.device_id WHERE d.code = %s AND m.name = %s "
                                   "ORDER BY t.time DESC LIMIT 1", (device, metric))
                return None if got is None else float(got)

            async def stored() -> bool:
                wanted = [("b1-submeter-1", "energy_import"), ("b1-submeter-2", "voltage_l1"),
                          ("b1-submeter-2", "power_total"), ("b1-water-1", "water_total")]
                return all([await value(d, m) is not None for d, m in wanted])

            await wait_for(stored, timeout=30, what="meter readings stored")
            assert 180 < (await value("b1-submeter-2", "voltage_l1") or 0) < 260
            assert (await value("b1-water-1", "water_total") or 0) > 0
            assert await value("b1-water-1", "valve") == 0
