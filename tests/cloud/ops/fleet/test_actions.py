"""Opening a gate by command, end to end: the API → the ``command-dispatcher`` → the real broker →
a real edge agent (a subprocess) → the device, and the device's answer back into the command's
row. Two gates of the demo: an MQTT access gate (command topic through the broker) and an ISAPI
door controller (``PUT …/RemoteControl/door/1`` with digest auth). Refused in the cloud when the
profile has no such command; refused by the device when it is locked down; butlers and residents
may not open gates (the policy row), engineers and admins may."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from cloud.auth.roles import Role
from cloud.registry import store
from cloud.registry.broker import BrokerAccount
from cloud.service import CloudService
from simulators import DeviceSpec, FleetSpec, SimulatedFleet
from tests.cloud.ops.fleet.test_round_trip import wait_status
from tests.support.edge.collector import Collector
from tests.support.edge.process import AgentProcess
from tests.support.services import BrokerHandle
from tests.support.webapp import MakeUser


@pytest.fixture
def gates(fresh_db: str, gateway_names: tuple[str, str]) -> dict[str, int]:
    community, gateway = gateway_names
    with psycopg.connect(fresh_db) as conn:
        store.add_gateway(conn, community, gateway)
        return {"gate": store.add_device(conn, community, "b1-gate-1", gateway=gateway, kind="gate",
                                         profile_id="access-gate"),
                "door": store.add_device(conn, community, "b1-door-1", gateway=gateway, kind="gate",
                                         profile_id="hikvision-isapi-acs"),
                "pump": store.add_device(conn, community, "b1-pump-1", gateway=gateway, kind="pump",
                                         profile_id="vfd-pump")}


@pytest.fixture
async def field(tmp_path: Path, broker: BrokerHandle, gateway_names: tuple[str, str]) -> AsyncIterator[SimulatedFleet]:
    """The two gates simulated, and an agent subprocess that knows them (no Modbus link)."""
    community, gateway = gateway_names
    _, url = broker.add_gateway(community, gateway)
    devices_url = broker.add_account(BrokerAccount.devices(community))
    spec = FleetSpec(community=community, devices=[
        DeviceSpec(id="b1-gate-1", profile="access-gate", building="b1", params={"peak_per_hour": 0}),
        DeviceSpec(id="b1-door-1", profile="hikvision-isapi-acs", building="b1",
                   params={"heartbeat_s": 1, "peak_per_hour": 0, "password": "S3cret-pw"})])
    async with SimulatedFleet(spec, mqtt_url=devices_url, tick_s=0.1) as fleet:
        door: dict[str, Any] = next(d for d in fleet.inventory["devices"] if d["id"] == "b1-door-1")
        agent = AgentProcess(tmp_path, url, community, gateway, None, [],
                             mqtt_devices={"devices": [{"id": "b1-gate-1", "profile": "access-gate"}]},
                             isapi={"devices": [{"id": "b1-door-1", "profile": "hikvision-isapi-acs",
                                                 "url": door["url"], "username": door["username"],
                                                 "password": door["password"]}]})
        agent.start()
        try:
            yield fleet
        finally:
            agent.stop()


async def test_engineer_opens_both_gates_and_sees_the_device_answer(
        command_cloud: CloudService, client: httpx.AsyncClient, make_user: MakeUser, gates: dict[str, int],
        field: SimulatedFleet, broker: BrokerHandle, gateway_names: tuple[str, str]) -> None:
    community, gateway = gateway_names
    engineer = await make_user(Role.engineer, community)
    async with Collector(broker.admin_url, community, gateway) as wire:
        await wire.wait_for(lambda: any(e["type"] == "device_online" and e["device"] == "b1-door-1"
                                        for e in wire.items("events")), timeout=30)
        for device in ("gate", "door"):
            resp = await client.post(f"/api/v1/devices/{gates[device]}/commands", headers=engineer.headers,
                                     json={"action": "open"})
            assert resp.status_code == 202, resp.text
            assert (resp.json()["kind"], resp.json()["point"], resp.json()["value"]) == ("action", "open", None)
            done = await wait_status(client, engineer.headers, gates[device], resp.json()["command_id"],
                                     {"done", "refused", "timed_out"})
            assert done["status"] == "done", done
        gate, door = field.devices["b1-gate-1"].gate, field.devices["b1-door-1"].isapi
        assert gate is not None
        assert gate.commands == 1
        assert door is not None
        assert door.controller.remote_controls == 1
        # the door reports the opening on its alert stream, up to the cloud
        await wire.wait_for(lambda: any(r["device"] == "b1-door-1" and r["values"].get("door_state") == 1
                                        for r in wire.items("telemetry")), timeout=15)

        # locked down by a duress alarm: the controller refuses, and the cloud shows its reason
        field.inject("b1-door-1", "duress")
        resp = await client.post(f"/api/v1/devices/{gates['door']}/commands", headers=engineer.headers,
                                 json={"action": "open"})
        refused = await wait_status(client, engineer.headers, gates["door"], resp.json()["command_id"],
                                    {"done", "refused", "timed_out"})
        assert (refused["status"], refused["reason"], refused["detail"]) == (
            "refused", "device_refused", "b1-door-1: deviceLocked")

    # refused in the cloud: the pump has no actions, the gate no "launch"; a body that is neither is 422
    for device, action in (("pump", "open"), ("gate", "launch")):
        resp = await client.post(f"/api/v1/devices/{gates[device]}/commands", headers=engineer.headers,
                                 json={"action": action})
        assert resp.status_code == 422, resp.text
        assert resp.json()["error"]["detail"]["reason"] == "unknown_command"
    resp = await client.post(f"/api/v1/devices/{gates['gate']}/commands", headers=engineer.headers,
                             json={"action": "open", "point": "door_state", "value": 1})
    assert resp.status_code == 422
    trail = (await client.get(f"/api/v1/devices/{gates['door']}/commands", headers=engineer.headers)).json()
    assert [(c["kind"], c["status"], c["issued_by"]) for c in trail] == [
        ("action", "refused", engineer.user.username), ("action", "done", engineer.user.username)]


async def test_butlers_and_residents_may_not_open_gates_admins_may(
        client: httpx.AsyncClient, make_user: MakeUser, gates: dict[str, int], gateway_names: tuple[str, str],
        fresh_db: str) -> None:
    community, _ = gateway_names
    for role in (Role.butler, Role.resident):
        login = await make_user(role, community)
        resp = await client.post(f"/api/v1/devices/{gates['gate']}/commands", headers=login.headers,
                                 json={"action": "open"})
        assert resp.status_code == 403, resp.text
    admin = await make_user(Role.admin)
    resp = await client.post(f"/api/v1/devices/{gates['gate']}/commands", headers=admin.headers,
                             json={"action": "open"})
    assert resp.status_code == 202, resp.text   # queued; no gateway is online here, so it waits
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT kind, point, value, status FROM device_commands").fetchall() == [
            ("action", "open", None, "pending")]
