"""A command past its ``expires`` is refused by the edge (``expired``) and never reaches the bus,
whatever delayed it on the way; one within its expiry is applied."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import orjson

from edge.agent import Agent
from guanjia.core.wire import WriteCommand, encode_command, topic
from tests.support.edge.agent import agent_config
from tests.support.edge.collector import Collector
from tests.support.edge.profiles import PUMP_VALUES, TEST_PUMP
from tests.support.edge.servers import ProfileServer, Unit
from tests.support.services import BrokerHandle


async def test_expired_command_is_refused_and_not_written(tmp_path: Path, broker: BrokerHandle) -> None:
    community, gateway = f"c{uuid.uuid4().hex[:6]}", f"gw{uuid.uuid4().hex[:6]}"
    _, url = broker.add_gateway(community, gateway)
    unit = Unit(1, TEST_PUMP, dict(PUMP_VALUES))
    async with ProfileServer([unit]) as server, Collector(broker.admin_url, community, gateway) as cloud, \
        Agent(agent_config(tmp_path, url, community, gateway, server.port)):
        await cloud.wait_for(lambda: any(e["type"] == "device_online" for e in cloud.items("events")))
        now = int(time.time() * 1000)  # the edge compares with its own wall clock, as a box in the field does
        cmd = topic(community, gateway, "cmd")
        await cloud.publish(cmd, encode_command(
            WriteCommand("late", "pump-0", "pressure_setpoint", 4.5, expires=now - 60_000), ts=now))
        await cloud.publish(cmd, encode_command(
            WriteCommand("fresh", "pump-0", "pressure_setpoint", 4.25, expires=now + 60_000), ts=now))
        await cloud.publish(cmd, orjson.dumps({"id": "bad", "device": "pump-0", "point": "pressure_setpoint",
                                               "value": 4, "expires": "soon"}))
        await cloud.wait_for(lambda: len(cloud.replies) >= 3)
    replies = {r["id"]: r for r in cloud.replies}
    assert replies["late"]["ok"] is False
    assert replies["late"]["reason"] == "expired"
    assert replies["fresh"]["ok"] is True
    assert replies["bad"]["reason"] == "bad_command"
    assert [values for _fc, addr, values in unit.writes if addr == 10] == [[425]]
