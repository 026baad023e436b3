"""MQTT devices (gates) through a real broker: payloads mapped with the profile, malformed ones kept
aside (rejects table + event), never dropped silently; the probe CLI prints decodings as JSON."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

import orjson

from cloud.registry.broker import BrokerAccount
from device_profiles import find_profile
from device_profiles.payload import encode_payload
from edge.agent import Agent
from edge.config import AgentConfig, MqttDeviceConfig, MqttDevicesConfig, OutboxConfig, RulesConfig, UplinkConfig
from edge.outbox import read_stats
from tests.support.edge.collector import Collector
from tests.support.edge.profiles import PUMP_VALUES, TEST_PUMP
from tests.support.edge.servers import ProfileServer, Unit
from tests.support.services import BrokerHandle

ROOT = Path(__file__).resolve().parents[2]


async def test_gate_payloads_mapped_and_malformed_kept_aside(tmp_path: Path, broker: BrokerHandle) -> None:
    community, gateway = f"c{uuid.uuid4().hex[:6]}", f"gw{uuid.uuid4().hex[:6]}"
    _, url = broker.add_gateway(community, gateway)
    devices_url = broker.add_account(BrokerAccount.devices(community))
    config = AgentConfig(
        gateway=gateway, community=community, uplink=UplinkConfig(url=url, reconnect_initial_s=0.1),
        outbox=OutboxConfig(path=tmp_path / "o.db", flush_interval_s=0.1, synchronous="normal"),
        mqtt_devices=MqttDevicesConfig(devices=[MqttDeviceConfig(id="b1-gate-1", profile="access-gate")]),
        rules=RulesConfig(builtin=False, state_path=tmp_path / "r.json"),
    )
    profile = find_profile("access-gate")
    topic = f"devices/{community}/b1-gate-1/state"
    async with Collector(broker.admin_url, community, gateway) as cloud, Agent(config) as agent:
        await cloud.wait_for(lambda: agent.listener.connected)
        gate = Collector(devices_url, community, gateway)
        good = encode_payload(profile, {"door_state": "open", "passages_in": 41, "forced_open": False},
                              int(time.time() * 1000))
        before = int(time.time() * 1000)
        await gate.publish(topic, good)
        # a gate clock 10 minutes slow: timed by the agent, flagged, its own time kept beside
        slow = encode_payload(profile, {"passages_in": 42}, int(time.time() * 1000) - 600_000)
        await gate.publish(topic, slow)
        await gate.publish(topic, b"{not json")
        await gate.publish(topic, orjson.dumps({"passages": {"in": "many"}}))
        await cloud.wait_for(lambda: any(r["device"] == "b1-gate-1" for r in cloud.items("telemetry")))
        await cloud.wait_for(lambda: any(e["type"] == "payload_rejected" for e in cloud.items("events")))
        await cloud.wait_for(lambda: agent.listener.rejects == 2)
    reading = next(r for r in cloud.items("telemetry") if r["device"] == "b1-gate-1")
    assert reading["values"]["door_state"] == 1  # enum names travel as codes, like Modbus enums
    assert reading["values"]["passages_in"] == 41
    assert reading["quality"] == "good"
    assert read_stats(tmp_path / "o.db")["rejects"] == 2
    skewed = next(r for r in cloud.items("telemetry") if r["values"].get("passages_in") == 42)
    assert skewed["quality"] == "clock_skew"
    assert skewed["ts"] >= before  # the agent's receive time, not the gate's (10 min earlier)
    assert skewed["ts"] - skewed["values"]["device_clock"] * 1000 >= 599_000


async def test_probe_cli_json(tmp_path: Path) -> None:
    values = {**PUMP_VALUES, "outlet_pressure_bar": 230.0}
    async with ProfileServer([Unit(1, TEST_PUMP, values)]) as server:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "guanjia.app.cli.main", "edge", "probe", f"127.0.0.1:{server.port}", "--unit", "1",
            "--address", "2", "--json", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    doc = json.loads(out)
    rows = {r["as"]: r for r in doc["interpretations"]}
    assert rows["float32 ABCD"]["zero_based"] == "230"
    assert rows["uint16"]["zero_based"] == str(0x4366)


async def test_gates_are_not_declared_offline_while_the_agent_is_not_listening(tmp_path: Path) -> None:
    """Silence is the device's only while the agent's subscription is up; after a reconnect it is
    counted from the reconnect (an uplink outage is the gateway's incident, not one per gate)."""
    from edge.config import UplinkConfig
    from edge.mqtt_devices import MqttDeviceListener
    from edge.outbox import Outbox
    from guanjia.core.wire import Quality, Scalar

    offline: list[str] = []

    class Sink:
        def reading(self, device: str, ts_ms: int, values: dict[str, Scalar], quality: dict[str, Quality]) -> None:
            if set(quality.values()) == {Quality.OFFLINE}:
                offline.append(device)

        def event(self, device: str, type_: str, data: dict[str, object]) -> None:
            return None

    listener = MqttDeviceListener(
        [(MqttDeviceConfig(id="g1", profile="access-gate", stale_after_s=0.5), find_profile("access-gate"))],
        community="c1", uplink=UplinkConfig(url="mqtt://127.0.0.1:1"), url=None, gateway="gw-1", sink=Sink(),
        outbox=Outbox(tmp_path / "o.db", gateway="gw-1"))
    task = asyncio.create_task(listener._staleness())
    try:
        await asyncio.sleep(2.2)  # not connected: nothing is anyone's silence
        assert offline == []
        listener.connected, listener.connected_at = True, time.monotonic()
        await asyncio.sleep(2.2)  # connected and the gate says nothing: offline once
        assert offline == ["g1"]
    finally:
        task.cancel()
