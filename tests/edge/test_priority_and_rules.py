"""Alarms jump the queue; live data is not starved by a backlog; local rules raise once, clear once,
and a pending ``for:`` duration survives an agent restart."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

import orjson

from edge.agent import Agent
from edge.config import RulesConfig, UplinkConfig
from edge.outbox import Outbox
from edge.uplink import Uplink
from tests.support.edge.agent import agent_config
from tests.support.edge.collector import Collector
from tests.support.edge.profiles import PUMP_VALUES, TEST_PUMP
from tests.support.edge.servers import ProfileServer, Unit
from tests.support.services import BrokerHandle

RULES = """\
version: 1
rules:
  - id: test-low-pressure
    severity: major
    kinds: [pump]
    message: "{device}: outlet pressure {value} bar"
    work_order: false
    for: 2s
    threshold:
      metric: outlet_pressure_bar
      below: 2.0
      clear_above: 2.5
"""


def ids() -> tuple[str, str]:
    return f"c{uuid.uuid4().hex[:6]}", f"gw{uuid.uuid4().hex[:6]}"


def reading(i: int) -> dict[str, object]:
    return {"device": "d1", "ts": i, "values": {"v": i}, "quality": "good"}


async def test_alarm_goes_out_ahead_of_a_telemetry_backlog(tmp_path: Path, broker: BrokerHandle) -> None:
    community, gateway = ids()
    _, url = broker.add_gateway(community, gateway)
    async with Outbox(tmp_path / "o.db", gateway=gateway, batch_max_items=10) as outbox, \
            Collector(broker.admin_url, community, gateway) as cloud:
        for i in range(2000):  # 200 telemetry messages waiting (the broker was "away")
            outbox.add_reading(reading(i))
        await outbox.flush()
        outbox.add_alarm({"device": "d1", "rule": "r1", "state": "raise", "severity": "critical", "ts": 1})
        await outbox.flush()
        uplink = Uplink(UplinkConfig(url=url, max_inflight=2), gateway=gateway, community=community,
                        outbox=outbox, health=dict, heartbeat_s=60)
        task = asyncio.create_task(uplink.run())
        try:
            await cloud.wait_for(lambda: len(cloud.envelopes) >= 201)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        kinds = [e.kind for e in cloud.envelopes]
        assert "alarms" in kinds[:2]  # the newest message (highest seq) went first
        telemetry_seqs = [e.seq for e in cloud.of("telemetry")]
        assert telemetry_seqs == sorted(telemetry_seqs)  # backlog oldest first (max_inflight 2, in order)
        cloud.check_sequence(outbox.last_seq)


async def test_live_data_is_not_starved_by_catch_up(tmp_path: Path, broker: BrokerHandle) -> None:
    community, gateway = ids()
    _, url = broker.add_gateway(community, gateway)
    async with Outbox(tmp_path / "o.db", gateway=gateway, batch_max_items=5) as outbox, \
            Collector(broker.admin_url, community, gateway) as cloud:
        for i in range(3000):  # 600 messages of backlog
            outbox.add_reading(reading(i))
        await outbox.flush()
        backlog_last = outbox.last_seq
        uplink = Uplink(UplinkConfig(url=url, max_inflight=4, catchup_share=0.5, catchup_items_per_s=500),
                        gateway=gateway, community=community, outbox=outbox, health=dict, heartbeat_s=60)
        task = asyncio.create_task(uplink.run())
        try:
            await cloud.wait_for(lambda: len(cloud.envelopes) >= 5)
            for i in range(5):  # live data arrives while the backlog drains
                outbox.add_reading(reading(100_000 + i))
            await outbox.flush()
            live = set(range(backlog_last + 1, outbox.last_seq + 1))
            await cloud.wait_for(lambda: live <= {e.seq for e in cloud.envelopes})
            backlog_seen = sum(1 for e in cloud.envelopes if e.seq <= backlog_last)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        assert backlog_seen < backlog_last  # live went out before the backlog was done


async def test_rule_raises_once_survives_restart_and_clears(tmp_path: Path, broker: BrokerHandle) -> None:
    community, gateway = ids()
    _, url = broker.add_gateway(community, gateway)
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "test.yaml").write_text(RULES)
    unit = Unit(1, TEST_PUMP, {**PUMP_VALUES, "outlet_pressure_bar": 1.0})
    async with ProfileServer([unit]) as server, Collector(broker.admin_url, community, gateway) as cloud:
        base = agent_config(tmp_path, url, community, gateway, server.port, period_s=0.2)
        config = base.model_copy(update={"rules": RulesConfig(builtin=False, paths=[rules_dir],
                                                              state_path=tmp_path / "rules-state.json")})
        async with Agent(config):
            await asyncio.sleep(1.0)  # low pressure for ~1 s of the 2 s `for:`
        state = orjson.loads((tmp_path / "rules-state.json").read_bytes())
        slot = state["devices"]["pump-0"]["rules"]["test-low-pressure"]
        assert slot["active"] is False
        assert slot["pending"] is not None  # the duration in progress was saved
        async with Agent(config):
            await cloud.wait_for(lambda: any(a["state"] == "raise" for a in cloud.items("alarms")))
            unit.set("outlet_pressure_bar", 3.0)
            await cloud.wait_for(lambda: any(a["state"] == "clear" for a in cloud.items("alarms")))
            await asyncio.sleep(0.5)
        alarms = [a for a in cloud.items("alarms") if a["rule"] == "test-low-pressure"]
        assert [a["state"] for a in alarms] == ["raise", "clear"]
        raised = alarms[0]
        assert raised["device"] == "pump-0"
        assert raised["severity"] == "major"
        assert "1.0" in raised["message"]
