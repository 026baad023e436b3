"""A cloud that is behind tells the edges so, and their resend timers back off (issue 21).

A real edge uplink (outbox, aiomqtt, end-to-end ack) sends a batch every ~0.2 s to a real
worker whose writer takes 1 s per commit, so every batch is confirmed 1–2.5 s after it was sent —
longer than the edge's 1.5 s resend timeout. Without the hint nearly every batch would be resent
(a duplicate on a cloud already behind); with it, the edge restarts its timers at each ``behind``
confirmation and resends almost nothing. Either way every batch is stored once and confirmed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

import pytest

from cloud.ingest import worker as worker_module
from cloud.ingest.writer import Writer
from edge.config import UplinkConfig
from edge.outbox import Outbox
from edge.uplink import Uplink
from tests.support.ingest import register, running_worker, scalar, unique, wait_for
from tests.support.services import BrokerHandle

COMMIT_DELAY_S = 1.0


async def _edge_against_slow_cloud(ingest_db: str, broker: BrokerHandle, tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch, *, hint: bool) -> tuple[Uplink, int, int]:
    community, gateway = unique("c"), unique("gw")
    gid = register(ingest_db, community, gateway, ["d1"])
    _, url = broker.add_gateway(community, gateway)
    write = Writer.write

    async def slow_write(self: Writer, conn: Any, batch: Any) -> Any:
        await asyncio.sleep(COMMIT_DELAY_S)
        return await write(self, conn, batch)

    monkeypatch.setattr(Writer, "write", slow_write)
    if not hint:
        monkeypatch.setattr(worker_module.IngestWorker, "behind", property(lambda self: False))
    async with running_worker(ingest_db, broker.admin_url) as worker, \
            Outbox(tmp_path / f"o-{hint}.db", gateway=gateway, batch_max_items=5, flush_interval_s=0.05) as outbox:
        uplink = Uplink(UplinkConfig(url=url, confirm_timeout_s=1.5, confirm_timeout_max_s=1.5),
                        gateway=gateway, community=community, outbox=outbox, health=dict, heartbeat_s=60)
        task = asyncio.create_task(uplink.run())
        try:
            start = time.time()
            n = 0
            while time.time() - start < 6.0:
                for _ in range(5):
                    n += 1
                    outbox.add_reading({"device": "d1", "ts": int(time.time() * 1000) + n, "values": {"v": float(n)}})
                await asyncio.sleep(0.2)
            await outbox.flush()
            last = outbox.last_seq

            async def all_confirmed() -> bool:
                return outbox.unconfirmed() == 0 and outbox.depth() == 0

            await wait_for(all_confirmed, timeout=60, what="every batch confirmed")
            stored = await scalar(ingest_db, "SELECT count(*) FROM ingest_batches WHERE gateway_id = %s", (gid,))
            assert worker.confirms.size == 0
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    return uplink, last, int(stored)


async def test_behind_hint_prevents_a_resend_storm(ingest_db: str, broker: BrokerHandle, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    with monkeypatch.context() as patch:
        plain, plain_last, plain_stored = await _edge_against_slow_cloud(ingest_db, broker, tmp_path, patch,
                                                                         hint=False)
    hinted, last, stored = await _edge_against_slow_cloud(ingest_db, broker, tmp_path, monkeypatch, hint=True)
    # nothing lost, nothing stored twice, in both runs
    assert (plain_stored, stored) == (plain_last, last)
    assert plain.behind_hints == 0
    assert hinted.behind_hints > 0
    # the comparison: without the hint a large share of the batches went twice
    assert plain.resent >= plain_last // 3, (plain.resent, plain_last)
    assert hinted.resent <= max(2, plain.resent // 4), (hinted.resent, plain.resent)
