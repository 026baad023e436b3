"""MQTT gates through a real Mosquitto, and the HTTP control endpoint of a running fleet."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import aiomqtt
import httpx

from cloud.registry.broker import BrokerAccount
from device_profiles import find_profile
from device_profiles.payload import decode_payload
from guanjia.core.settings import MqttUrl
from simulators import FleetSpec, SimulatedFleet
from simulators.fleet import DeviceSpec


def _gate_fleet(community: str) -> FleetSpec:
    return FleetSpec(community=community, devices=[
        DeviceSpec(id="g1", profile="access-gate"),
        DeviceSpec(id="l1", profile="elevator-gbt24476", unit=1),
    ])


async def test_gate_publishes_through_a_real_broker(broker: Any) -> None:
    community = f"c{uuid.uuid4().hex[:8]}"
    devices_url = broker.add_account(BrokerAccount.devices(community))
    admin = MqttUrl.parse(broker.admin_url)
    gate = find_profile("access-gate")
    async with aiomqtt.Client(admin.host, admin.port, username=admin.username, password=admin.password) as sub:
        await sub.subscribe(f"devices/{community}/#", qos=1)
        async with SimulatedFleet(_gate_fleet(community), mqtt_url=devices_url, speed=600) as fleet:
            assert fleet.inventory["devices"][0]["topic"] == f"devices/{community}/g1/state"
            messages = []
            async with asyncio.timeout(10):
                async for message in sub.messages:
                    assert str(message.topic) == f"devices/{community}/g1/state"
                    assert isinstance(message.payload, bytes)
                    messages.append(decode_payload(gate, message.payload))
                    if len(messages) == 2:
                        break
            fleet.inject("g1", "forced_open")
            async with asyncio.timeout(10):
                async for message in sub.messages:
                    assert isinstance(message.payload, bytes)
                    _, values = decode_payload(gate, message.payload)
                    if values.get("forced_open"):
                        break
    (ts0, first), (_, second) = messages
    assert ts0 is not None
    assert abs(ts0 / 1000 - fleet.clock.device_now()) < 30
    assert int(second["heartbeat"]) == int(first["heartbeat"]) + 1
    assert int(second["passages_in"]) >= int(first["passages_in"])
    assert values["door_state"] == 1
    assert values["last_event"] == 102


async def test_control_endpoint() -> None:
    async with SimulatedFleet(_gate_fleet("ctl"), control_port=0) as fleet:
        assert fleet.control_url is not None
        async with httpx.AsyncClient(base_url=fleet.control_url, timeout=5) as http:
            health = (await http.get("/health")).json()
            assert health["ok"] is True
            inventory = (await http.get("/devices")).json()
            assert {d["id"] for d in inventory["devices"]} == {"g1", "l1"}
            values = (await http.get("/devices/l1")).json()["values"]
            assert values["fault_code"] == 0
            created = await http.post("/faults", json={"device": "l1", "fault": "door_lock_fault",
                                                       "duration_s": 3600})
            assert created.status_code == 201
            fault_id = created.json()["id"]
            assert (await http.get("/devices/l1")).json()["values"]["fault_code"] == 2
            active = (await http.get("/faults")).json()["active"]
            assert [(f["device"], f["fault"]) for f in active] == [("l1", "door_lock_fault")]
            assert (await http.delete(f"/faults/{fault_id}")).status_code == 200
            assert (await http.get("/devices/l1")).json()["values"]["fault_code"] == 0
            bad = await http.post("/faults", json={"device": "l1", "fault": "dry_run"})
            assert bad.status_code == 400
            assert "cannot have fault 'dry_run'" in bad.json()["error"]
            assert (await http.post("/faults", json={"device": "nope", "fault": "offline"})).status_code == 400
            assert (await http.get("/devices/nope")).status_code == 404
            assert (await http.delete("/faults/999")).status_code == 404
            assert (await http.get("/nothing")).status_code == 404
