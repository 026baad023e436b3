"""Actions (a profile's ``commands:``, a gate's remote ``open``) forwarded by the edge to the device,
over real sockets: an ISAPI controller takes ``PUT /ISAPI/AccessControl/RemoteControl/door/1`` with
digest auth and answers a ResponseStatus; an MQTT gate takes ``{"id", "cmd"}`` on its command topic
through the real broker and answers on ``…/reply``. Done only when the device said so; a device
that is locked down refuses, one that does not answer times out; the agent's command handler
refuses unknown devices and commands before anything is sent."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import orjson
import pytest

from cloud.registry.broker import BrokerAccount
from device_profiles import find_profile
from edge.agent import Agent
from edge.errors import CommandRejected
from guanjia.core.wire import WriteCommand, encode_command
from simulators import DeviceSpec, FleetSpec, SimulatedFleet
from tests.edge.test_isapi import controller, wait_for
from tests.support.edge.agent import mqtt_agent_config
from tests.support.services import BrokerHandle

GATE = find_profile("access-gate")
OPEN = GATE.command("open")


async def test_isapi_remote_open_done_refused_and_bad_password(tmp_path: Path) -> None:
    async with controller(tmp_path) as (fleet, listener, sink):
        door = listener.devices["b1-door-1"]
        sim = fleet.devices["b1-door-1"].isapi
        assert sim is not None
        command = door.profile.command("open")
        assert command is not None
        await listener.perform(door, command, "c-1")
        assert sim.controller.remote_controls == 1
        # the controller reports the door it opened on its alert stream
        await wait_for("door opened", lambda: sink.last().get("door_state") == 1)
        fleet.inject("b1-door-1", "tamper")
        with pytest.raises(CommandRejected) as refused:
            await listener.perform(door, command, "c-2")
        assert (refused.value.reason, refused.value.detail) == ("device_refused", "b1-door-1: deviceLocked")
    async with controller(tmp_path, password="wrong") as (_fleet, listener, _sink):
        door = listener.devices["b1-door-1"]
        with pytest.raises(CommandRejected) as refused:
            await listener.perform(door, command, "c-3")
        assert refused.value.detail == "b1-door-1: credentials refused"


async def test_mqtt_gate_open_through_the_broker(tmp_path: Path, broker: BrokerHandle) -> None:
    community, gateway = f"c{uuid.uuid4().hex[:6]}", f"gw{uuid.uuid4().hex[:6]}"
    _, url = broker.add_gateway(community, gateway)   # the gateway's own ACL: may publish devices/{c}/+/cmd
    devices_url = broker.add_account(BrokerAccount.devices(community))
    config = mqtt_agent_config(tmp_path, url, community, gateway, {"b1-gate-1": "access-gate"})
    spec = FleetSpec(community=community, devices=[DeviceSpec(id="b1-gate-1", profile="access-gate",
                                                              building="b1", params={"peak_per_hour": 0})])
    async with Agent(config) as agent:
        await wait_for("agent subscribed", lambda: agent.listener.connected)
        async with SimulatedFleet(spec, mqtt_url=devices_url, tick_s=0.1) as fleet:
            await wait_for("gate online", lambda: agent.listener.online_count == 1, timeout=20)
            await _open_gate(agent, fleet)


async def _open_gate(agent: Agent, fleet: SimulatedFleet) -> None:
    handler = agent.commands
    reply = orjson.loads(await handler.handle(encode_command(
        WriteCommand("c-open-1", "b1-gate-1", "open", None, type="action"), ts=0)))
    assert (reply["ok"], reply["reason"], reply["point"]) == (True, None, "open"), reply
    gate = fleet.devices["b1-gate-1"].gate
    assert gate is not None
    assert gate.commands == 1
    assert gate.model.values()["door_state"] == 1
    assert gate.model.values()["last_event"] == 8

    # refused by the gate itself (locked down by duress), then silent (offline): the agent says which
    fleet.inject("b1-gate-1", "duress")
    reply = orjson.loads(await handler.handle(encode_command(
        WriteCommand("c-open-2", "b1-gate-1", "open", None, type="action"), ts=0)))
    assert (reply["ok"], reply["reason"]) == (False, "device_refused")
    assert "locked down" in reply["detail"]
    gate.offline = True
    started = asyncio.get_running_loop().time()
    reply = orjson.loads(await handler.handle(encode_command(
        WriteCommand("c-open-3", "b1-gate-1", "open", None, type="action"), ts=0)))
    assert (reply["ok"], reply["reason"]) == (False, "device_timeout")
    assert OPEN is not None
    assert asyncio.get_running_loop().time() - started == pytest.approx(OPEN.timeout_s, abs=1.0)

    # refused by the agent before anything is sent
    for device, name, reason in (("b1-gate-1", "launch", "unknown_command"),
                                 ("nobody", "open", "unknown_device")):
        reply = orjson.loads(await handler.handle(encode_command(
            WriteCommand(f"c-{name}", device, name, None, type="action"), ts=0)))
        assert (reply["ok"], reply["reason"]) == (False, reason), reply
    assert gate.commands == 2   # the offline gate heard nothing; the agent sent nothing more
