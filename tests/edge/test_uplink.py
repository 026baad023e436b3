"""The uplink's clean shutdown: what the last commit holds reaches the cloud before the agent stops."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path

from edge.config import UplinkConfig
from edge.outbox import Outbox
from edge.uplink import Uplink
from tests.support.edge.collector import Collector
from tests.support.services import BrokerHandle


async def test_drain_delivers_the_shutdown_commit_and_leaves_a_backlog(tmp_path: Path, broker: BrokerHandle) -> None:
    """The readings committed as the agent stops (its last moments) are sent and confirmed by
    ``drain``; with the cloud not confirming, drain gives up after its deadline and the rows stay
    for the next start (nothing deleted without a confirmation)."""
    community, gateway = f"c{uuid.uuid4().hex[:6]}", f"gw{uuid.uuid4().hex[:6]}"
    _, url = broker.add_gateway(community, gateway)
    for confirm in (True, False):
        async with Outbox(tmp_path / f"o-{confirm}.db", gateway=gateway) as outbox, \
                Collector(broker.admin_url, community, gateway, confirm=confirm) as cloud:
            uplink = Uplink(UplinkConfig(url=url), gateway=gateway, community=community, outbox=outbox,
                            health=dict, heartbeat_s=60)
            task = asyncio.create_task(uplink.run())
            try:
                async with asyncio.timeout(10):
                    while not uplink.connected:
                        await asyncio.sleep(0.02)
                outbox.add_reading({"device": "d1", "ts": 1, "values": {"v": 0}, "q": {"v": "offline"}})
                await outbox.flush()  # the shutdown's commit
                await uplink.drain(timeout=2.0)
                assert outbox.depth() == (0 if confirm else 1)
                assert [e.kind for e in cloud.envelopes] == ["telemetry"]
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
