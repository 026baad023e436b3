"""Lift IoT boxes end to end on the edge: two box families publishing through a real Mosquitto (the
simulators speak each family's codes), the agent mapping them with their profiles, and an
entrapment (困人) raising the unchanged elevator rule as an emergency alarm on the uplink — which
the cloud's alarm processor turns into a P0 work order like any lift's."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from psycopg.types.json import Jsonb

from cloud.ops.alarms.processor import process_batch
from cloud.ops.model.policy import default_policy
from cloud.registry.broker import BrokerAccount
from edge.agent import Agent
from edge.config import AgentConfig, MqttDeviceConfig, MqttDevicesConfig, OutboxConfig, RulesConfig, UplinkConfig
from guanjia.core.clock import ManualClock
from simulators import DeviceSpec, FleetSpec, SimulatedFleet
from tests.support.edge.collector import Collector
from tests.support.services import BrokerHandle

BOXES = {"b1-lift-1": "lift-box-a", "b1-lift-2": "lift-box-b"}


def _trapped(cloud: Collector, device: str) -> list[Mapping[str, Any]]:
    return [a for a in cloud.items("alarms")
            if a["device"] == device and a["rule"] == "elevator-passengers-trapped" and a["state"] == "raise"]


async def test_box_families_report_and_entrapment_raises_the_lift_rule(tmp_path: Path, broker: BrokerHandle,
                                                                       full: Any) -> None:
    community, gateway = f"c{uuid.uuid4().hex[:6]}", f"gw{uuid.uuid4().hex[:6]}"
    _, url = broker.add_gateway(community, gateway)
    devices_url = broker.add_account(BrokerAccount.devices(community))
    config = AgentConfig(
        gateway=gateway, community=community, uplink=UplinkConfig(url=url, reconnect_initial_s=0.1),
        outbox=OutboxConfig(path=tmp_path / "o.db", flush_interval_s=0.1, synchronous="normal"),
        mqtt_devices=MqttDevicesConfig(devices=[MqttDeviceConfig(id=d, profile=p) for d, p in BOXES.items()]),
        rules=RulesConfig(builtin=True, reload=False, state_path=tmp_path / "r.json"),
    )
    fleet_spec = FleetSpec(community=community, devices=[
        DeviceSpec(id=d, profile=p, building="b1", params={"floors": 12}) for d, p in BOXES.items()])
    async with Collector(broker.admin_url, community, gateway) as cloud, Agent(config) as agent:
        # subscribed before the boxes start: an idle box speaks again only at its 15 s heartbeat
        await cloud.wait_for(lambda: agent.listener.connected)
        async with SimulatedFleet(fleet_spec, mqtt_url=devices_url, tick_s=0.1) as fleet:
            await cloud.wait_for(lambda: {r["device"] for r in cloud.items("telemetry")} >= set(BOXES), timeout=40)
            assert agent.listener.rejects == 0
            for device in BOXES:
                fleet.inject(device, "passengers_trapped")
            await cloud.wait_for(lambda: all(_trapped(cloud, d) for d in BOXES), timeout=40)
            # the alarm goes up at once, the reading that raised it with the next telemetry batch
            await cloud.wait_for(lambda: any(r["device"] == "b1-lift-2" and r["values"].get("fault_code") == 1
                                             for r in cloud.items("telemetry")), timeout=20)
        for device in BOXES:
            alarm = _trapped(cloud, device)[0]
            assert alarm["severity"] == "critical"
            assert alarm["work_order"] is True
            assert alarm["labels"]["priority"] == "emergency"
        readings = [r for r in cloud.items("telemetry") if r["device"] == "b1-lift-2" and "fault_code" in r["values"]]
        assert readings[-1]["values"]["fault_code"] == 1          # err 30 → passengers_trapped
        assert readings[-1]["values"]["alarm_word"] & 1
        assert "device_clock" in next(r for r in cloud.items("telemetry") if r["device"] == "b1-lift-1")["values"]

    # downstream, unchanged: the alarm as ingest stores it → the processor → one P0 work order
    conn, gateway_id, device_id = full
    alarm = _trapped(cloud, "b1-lift-2")[0]
    raised = datetime.fromtimestamp(alarm["ts"] / 1000, UTC)
    await conn.execute(
        """INSERT INTO alarm_events (gateway_id, seq, device_id, device_code, rule, state, severity, ts, message,
                                     work_order, labels)
           VALUES (%s, 1, %s, 'lift-1', %s, %s, %s, %s, %s, %s, %s)""",
        (gateway_id, device_id, alarm["rule"], alarm["state"], alarm["severity"], raised, alarm["message"],
         alarm["work_order"], Jsonb(alarm["labels"])))
    results = await process_batch(conn, default_policy(), ManualClock(raised).now())
    assert [r.outcome for r in results] == ["raised"]
    cur = await conn.execute("SELECT device_kind, priority FROM work_orders")
    assert await cur.fetchall() == [("elevator", "P0")]
