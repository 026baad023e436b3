"""Remote commands end to end: the API → the ``command-dispatcher`` → the real broker → a real edge
agent (a subprocess) → a pymodbus server, and the reply back into the command's row.

Covers the round trip (the register really changes), refusal at the cloud (never published),
refusal at the edge (a device the cloud's registry places on a gateway that does not have it),
and expiry (a command to a gateway that is offline expires and does not fire when it returns)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from cloud.auth.roles import Role
from cloud.registry import store
from cloud.service import CloudService
from device_profiles import find_profile
from tests.support.edge.collector import Collector
from tests.support.edge.process import AgentProcess
from tests.support.edge.servers import ProfileServer, Unit
from tests.support.services import BrokerHandle
from tests.support.webapp import MakeUser

PUMP = find_profile("vfd-pump")


@pytest.fixture
def registered(fresh_db: str, gateway_names: tuple[str, str]) -> dict[str, int]:
    community, gateway = gateway_names
    with psycopg.connect(fresh_db) as conn:
        store.add_gateway(conn, community, gateway)
        return {code: store.add_device(conn, community, code, gateway=gateway, kind="pump", profile_id="vfd-pump")
                for code in ("pump-1", "ghost-1")}  # ghost-1: in the cloud's registry, not on the gateway


@pytest.fixture
def agent(tmp_path: Path, broker: BrokerHandle, gateway_names: tuple[str, str]) -> Iterator[Any]:
    community, gateway = gateway_names
    _, url = broker.add_gateway(community, gateway)
    made: list[AgentProcess] = []

    def make(port: int) -> AgentProcess:
        made.append(AgentProcess(tmp_path, url, community, gateway, port, [
            {"id": "pump-1", "profile": "vfd-pump", "unit": 1, "report_by_exception": False}]))
        return made[-1]

    yield make
    for a in made:
        a.stop()


async def wait_status(client: httpx.AsyncClient, headers: dict[str, str], device_id: int, command_id: str,
                      final: set[str], timeout: float = 20.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            resp = await client.get(f"/api/v1/devices/{device_id}/commands/{command_id}", headers=headers)
            assert resp.status_code == 200, resp.text
            if resp.json()["status"] in final:
                return dict(resp.json())
            await asyncio.sleep(0.1)


async def test_command_round_trip_and_refusals(
        command_cloud: CloudService, client: httpx.AsyncClient, make_user: MakeUser, registered: dict[str, int],
        agent: Any, broker: BrokerHandle, gateway_names: tuple[str, str]) -> None:
    community, gateway = gateway_names
    engineer = await make_user(Role.engineer, community)
    unit = Unit(1, PUMP, {"pressure_setpoint": 3.0, "outlet_pressure": 2.5})
    async with ProfileServer([unit]) as server, Collector(broker.admin_url, community, gateway) as wire:
        edge = agent(server.port)
        edge.start()
        # the device is polled (online at the edge) before the first command goes out
        await wire.wait_for(lambda: any(e["type"] == "device_online" for e in wire.items("events")), timeout=30)
        pump = registered["pump-1"]

        resp = await client.post(f"/api/v1/devices/{pump}/commands", headers=engineer.headers,
                                 json={"point": "pressure_setpoint", "value": 4.25})
        assert resp.status_code == 202, resp.text
        assert resp.json()["status"] == "pending"
        assert resp.json()["issued_by"] == engineer.user.username
        done = await wait_status(client, engineer.headers, pump, resp.json()["command_id"], {"done", "refused"})
        assert done["status"] == "done", done
        assert done["sent_at"] is not None
        assert done["finished_at"] is not None
        assert (6, 2002, [425]) in unit.writes  # FC06, 4.25 bar × 100, on the real Modbus server

        # refused in the cloud: 422, audited as rejected, never published
        resp = await client.post(f"/api/v1/devices/{pump}/commands", headers=engineer.headers,
                                 json={"point": "pressure_setpoint", "value": 12})
        assert resp.status_code == 422
        body = resp.json()["error"]
        assert body["code"] == "command_refused"
        assert body["detail"]["reason"] == "out_of_range"
        assert body["detail"]["status"] == "rejected"

        # refused at the edge: the cloud's registry says ghost-1 is on this gateway, the gateway does not know it
        ghost = registered["ghost-1"]
        resp = await client.post(f"/api/v1/devices/{ghost}/commands", headers=engineer.headers,
                                 json={"point": "fault_reset", "value": True})
        assert resp.status_code == 202, resp.text
        refused = await wait_status(client, engineer.headers, ghost, resp.json()["command_id"], {"done", "refused"})
        assert (refused["status"], refused["reason"]) == ("refused", "unknown_device")

        trail = (await client.get(f"/api/v1/devices/{pump}/commands", headers=engineer.headers)).json()
        assert [(c["status"], c["value"]) for c in trail] == [("rejected", 12), ("done", 4.25)]
        # the edge's own trail (command events up the uplink) saw the two commands that reached it, not the rejected one
        await wire.wait_for(lambda: sum(e["type"] == "command" for e in wire.items("events")) >= 2)
        outcomes = sorted(e["data"]["outcome"] for e in wire.items("events") if e["type"] == "command")
        assert outcomes == ["applied", "refused"]


async def test_a_command_to_an_offline_gateway_expires_and_never_fires(
        command_cloud: CloudService, client: httpx.AsyncClient, make_user: MakeUser, registered: dict[str, int],
        agent: Any, broker: BrokerHandle, gateway_names: tuple[str, str]) -> None:
    community, gateway = gateway_names
    admin = await make_user(Role.admin)
    unit = Unit(1, PUMP, {"pressure_setpoint": 3.0})
    pump = registered["pump-1"]
    async with ProfileServer([unit]) as server, Collector(broker.admin_url, community, gateway) as wire:
        resp = await client.post(f"/api/v1/devices/{pump}/commands", headers=admin.headers,
                                 json={"point": "pressure_setpoint", "value": 5, "expires_in_s": 1.5})
        assert resp.status_code == 202, resp.text
        expired = await wait_status(client, admin.headers, pump, resp.json()["command_id"], {"expired"})
        assert expired["sent_at"] is None
        assert expired["reason"] == "expired"
        # the gateway comes back: nothing fires late
        edge = agent(server.port)
        edge.start()
        await wire.wait_for(lambda: any(e["type"] == "device_online" for e in wire.items("events")), timeout=30)
        await asyncio.sleep(1.0)  # several dispatcher ticks with the gateway online
        assert not any(fc == 6 for fc, _addr, _values in unit.writes)
        assert not any(e["type"] == "command" for e in wire.items("events"))


async def test_residents_and_butlers_cannot_send_commands(client: httpx.AsyncClient, make_user: MakeUser,
                                                          registered: dict[str, int], gateway_names: tuple[str, str],
                                                          fresh_db: str) -> None:
    community, _ = gateway_names
    pump = registered["pump-1"]
    for role in (Role.resident, Role.butler):
        login = await make_user(role, community)
        resp = await client.post(f"/api/v1/devices/{pump}/commands", headers=login.headers,
                                 json={"point": "pressure_setpoint", "value": 4})
        assert resp.status_code == 403, resp.text
    other = await make_user(Role.engineer, "elsewhere")
    resp = await client.post(f"/api/v1/devices/{pump}/commands", headers=other.headers,
                             json={"point": "pressure_setpoint", "value": 4})
    assert resp.status_code == 404
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM device_commands").fetchone() == (0,)
