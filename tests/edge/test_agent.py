"""The agent end to end against a real broker and real Modbus servers: readings, events, commands,
reconnect after a broker restart (nothing lost, no duplicate seq with different content)."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

import orjson

import guanjia
from edge.agent import Agent
from edge.outbox import read_stats
from guanjia.core.wire import topic
from tests.support.edge.agent import agent_config
from tests.support.edge.collector import Collector
from tests.support.edge.profiles import PUMP_VALUES, TEST_PUMP
from tests.support.edge.servers import ProfileServer, Unit
from tests.support.services import BrokerHandle


def ids() -> tuple[str, str]:
    return f"c{uuid.uuid4().hex[:6]}", f"gw{uuid.uuid4().hex[:6]}"


async def test_readings_events_status_and_commands(tmp_path: Path, broker: BrokerHandle) -> None:
    community, gateway = ids()
    _, url = broker.add_gateway(community, gateway)
    unit = Unit(1, TEST_PUMP, dict(PUMP_VALUES))
    async with ProfileServer([unit]) as server, Collector(broker.admin_url, community, gateway) as cloud:
        config = agent_config(tmp_path, url, community, gateway, server.port)
        async with Agent(config) as agent:
            await cloud.wait_for(lambda: len(cloud.items("telemetry")) >= 3)
            await cloud.wait_for(lambda: any(e["type"] == "device_online" for e in cloud.items("events")))
            await cloud.wait_for(lambda: any(s["state"] == "online" for s in cloud.status))
            reading = cloud.items("telemetry")[0]
            assert reading["device"] == "pump-0"
            assert reading["quality"] == "good"
            assert reading["values"]["outlet_pressure_bar"] == 3.25
            cmd = topic(community, gateway, "cmd")
            commands = [
                {"id": "c1", "device": "pump-0", "point": "pressure_setpoint", "value": 12},
                {"id": "c2", "device": "pump-0", "point": "frequency_hz", "value": 10},
                {"id": "c3", "device": "nope", "point": "x", "value": 1},
                {"id": "c4", "device": "pump-0", "point": "pressure_setpoint", "value": 4.25},
                {"id": "c5", "device": "pump-0", "point": "fault_reset", "value": True},
            ]
            for command in commands:
                await cloud.publish(cmd, orjson.dumps(command))
            await cloud.publish(cmd, b"not json")
            await cloud.wait_for(lambda: len(cloud.replies) >= 6)
            replies = {r["id"]: r for r in cloud.replies}
            assert replies["c1"]["ok"] is False
            assert replies["c1"]["reason"] == "out_of_range"
            assert replies["c2"]["reason"] == "not_writable"
            assert replies["c3"]["reason"] == "unknown_device"
            assert replies["c4"]["ok"] is True
            assert replies["c5"]["ok"] is True
            assert replies[None]["reason"] == "bad_command"
            # FC06 for one register (4.25 bar × 100), FC05 for one coil
            assert (6, 10, [425]) in unit.writes
            assert any(fc == 5 and addr == 0 for fc, addr, _ in unit.writes)
            await cloud.wait_for(lambda: any(r["values"].get("pressure_setpoint") == 4.25
                                             for r in cloud.items("telemetry")))
            await cloud.wait_for(lambda: sum(e["type"] == "command" for e in cloud.items("events")) >= 5)
            health = agent.health()
            assert health["devices_online"] == 1
            assert health["outbox"]["rejects"] == 1
            assert health["agent_version"] == guanjia.__version__
            assert len(health["config_version"]) == 12
            # errors of the last hour: since start while young, then the growth over the last hour
            before = health["errors_1h"]
            agent.metrics.request_errors += 5
            assert agent.health()["errors_1h"] == before + 5
            agent.started -= 7200
            agent._error_marks.clear()
            agent._error_marks.append((time.monotonic() - 1800, before + 5))
            agent.metrics.poll_errors += 2
            assert agent.health()["errors_1h"] == 2
        await cloud.wait_for(lambda: cloud.status[-1]["state"] == "offline")
    stats = read_stats(tmp_path / "outbox.db")
    assert stats["audit"] == 6
    assert stats["rejects"] == 1


async def test_reconnect_after_broker_restart_loses_nothing(tmp_path: Path, own_broker: BrokerHandle) -> None:
    community, gateway = ids()
    _, url = own_broker.add_gateway(community, gateway)
    units = [Unit(i + 1, TEST_PUMP, dict(PUMP_VALUES)) for i in range(3)]
    async with ProfileServer(units) as server, Collector(own_broker.admin_url, community, gateway) as cloud:
        config = agent_config(tmp_path, url, community, gateway, server.port, period_s=0.1, devices=3)
        async with Agent(config) as agent:
            await cloud.wait_for(lambda: len(cloud.of("telemetry")) >= 3)
            own_broker.server.stop()
            await asyncio.sleep(2.0)  # readings keep being polled and committed while the broker is gone
            assert not agent.uplink.connected
            stored_during_outage = agent.outbox.last_seq
            own_broker.server.start()
            await cloud.wait_for(lambda: agent.uplink.connected, timeout=20)
            await asyncio.sleep(1.0)
            target = agent.outbox.last_seq
            assert target > stored_during_outage
            await cloud.wait_for(lambda: {e.seq for e in cloud.envelopes} >= set(range(1, target + 1)), timeout=30)
        cloud.check_sequence(target)


async def test_clean_restart_sends_no_duplicates(tmp_path: Path, broker: BrokerHandle) -> None:
    """A clean stop waits for the PUBACKs in flight, so a restart resends nothing."""
    community, gateway = ids()
    _, url = broker.add_gateway(community, gateway)
    units = [Unit(i + 1, TEST_PUMP, dict(PUMP_VALUES)) for i in range(3)]
    async with ProfileServer(units) as server, Collector(broker.admin_url, community, gateway) as cloud:
        config = agent_config(tmp_path, url, community, gateway, server.port, period_s=0.05, devices=3)
        for run in range(1, 4):
            async with Agent(config) as agent:
                await cloud.wait_for(lambda run=run: len(cloud.of("telemetry")) >= 15 * run)  # type: ignore[misc]
            last = agent.outbox.last_seq
        db = sqlite3.connect(tmp_path / "outbox.db")
        still_stored = {row[0] for row in db.execute("SELECT seq FROM messages")}
        db.close()
        await cloud.wait_for(lambda: {e.seq for e in cloud.envelopes} | still_stored >= set(range(1, last + 1)))
    seqs = [e.seq for e in cloud.envelopes]
    assert len(seqs) == len(set(seqs)), "a seq was delivered twice"
    cloud.check_sequence(last, still_stored)


async def test_batches_puback_without_subscriber_are_resent_until_confirmed(tmp_path: Path,
                                                                           broker: BrokerHandle) -> None:
    """End-to-end ack: the broker PUBACKs batches nobody is subscribed to (and drops them); the
    edge keeps them as *sent*, and resends them with the same seq once a cloud listens and confirms."""
    community, gateway = ids()
    _, url = broker.add_gateway(community, gateway)
    units = [Unit(1, TEST_PUMP, dict(PUMP_VALUES))]
    async with ProfileServer(units) as server:
        config = agent_config(tmp_path, url, community, gateway, server.port, period_s=0.1)
        config = config.model_copy(update={"uplink": config.uplink.model_copy(
            update={"confirm_timeout_s": 0.5, "confirm_timeout_max_s": 1.0})})
        async with Agent(config) as agent:
            async with asyncio.timeout(15):
                while agent.outbox.unconfirmed() < 3:
                    await asyncio.sleep(0.05)
            assert agent.uplink.published >= 3
            assert agent.outbox.depth() >= 3  # PUBACKed, not deleted
            health = agent.health()["outbox"]
            assert health["unconfirmed_messages"] >= 3
            target = agent.outbox.last_seq
            async with Collector(broker.admin_url, community, gateway) as cloud:
                await cloud.wait_for(lambda: {e.seq for e in cloud.envelopes} >= set(range(1, target + 1)),
                                     timeout=20)
                async with asyncio.timeout(15):
                    while (rows := await agent.outbox.fetch(2, 0, target)) or agent.outbox.unconfirmed() > 20:
                        await asyncio.sleep(0.1)
                assert not rows
                assert agent.uplink.resent >= 1
                assert agent.uplink.confirmations >= 1
        cloud.check_sequence(target)


async def test_without_end_to_end_ack_puback_deletes(tmp_path: Path, broker: BrokerHandle) -> None:
    """``end_to_end_ack: false`` (a cloud that does not confirm): the PUBACK alone deletes a batch."""
    community, gateway = ids()
    _, url = broker.add_gateway(community, gateway)
    async with ProfileServer([Unit(1, TEST_PUMP, dict(PUMP_VALUES))]) as server:
        config = agent_config(tmp_path, url, community, gateway, server.port, period_s=0.1)
        config = config.model_copy(update={"uplink": config.uplink.model_copy(update={"end_to_end_ack": False})})
        async with Agent(config) as agent:
            async with asyncio.timeout(15):
                while agent.uplink.published < 3:
                    await asyncio.sleep(0.05)
            await agent.outbox.flush()
            assert agent.outbox.unconfirmed() == 0
            first = await agent.outbox.fetch(2, 0, 1)
            assert not first
