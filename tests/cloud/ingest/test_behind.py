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


async def test_retained_behind_status_holds_resends_of_an_edge_with_nothing_committed(
        ingest_db: str, broker: BrokerHandle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ingest is paused (its commits hang), so no batch of either edge is committed and no
    confirmation can carry the ``behind`` hint. The worker sees it holds messages it cannot commit
    and publishes its retained ``behind`` status; the edge reading it resends nothing past its
    confirmation timeout (3 s here, 30 s in production), the edge ignoring it
    (``behind_hold_max_s=0``) resends. Once the ingest resumes, every batch is stored once and
    confirmed, and the status is cleared."""
    resume = asyncio.Event()
    write = Writer.write

    async def paused_write(self: Writer, conn: Any, batch: Any) -> Any:
        await resume.wait()
        return await write(self, conn, batch)

    monkeypatch.setattr(Writer, "write", paused_write)
    monkeypatch.setattr(worker_module, "STATUS_REFRESH_S", 0.2)
    community = unique("c")
    edges: list[tuple[str, int, Outbox, Uplink]] = []
    async with contextlib.AsyncExitStack() as stack:
        worker = await stack.enter_async_context(
            running_worker(ingest_db, broker.admin_url, behind_lag_s=1.0, behind_expiry_s=10.0))
        for name, hold_max_s in (("gw-reads", 600.0), ("gw-ignores", 0.0)):
            gid = register(ingest_db, community, name, ["d1"])
            _, url = broker.add_gateway(community, name)
            outbox = await stack.enter_async_context(
                Outbox(tmp_path / f"{name}.db", gateway=name, batch_max_items=5, flush_interval_s=0.05))
            config = UplinkConfig(url=url, confirm_timeout_s=3.0, confirm_timeout_max_s=3.0,
                                  behind_hold_max_s=hold_max_s)
            edges.append((name, gid, outbox, Uplink(config, gateway=name, community=community, outbox=outbox,
                                                    health=dict, heartbeat_s=60)))
        tasks = [asyncio.create_task(uplink.run()) for *_, uplink in edges]
        try:
            start = time.time()
            n = 0
            while time.time() - start < 9.0:  # three confirmation timeouts with nothing committed
                n += 1
                for _, _, outbox, _ in edges:
                    outbox.add_reading({"device": "d1", "ts": int(time.time() * 1000) + n, "values": {"v": float(n)}})
                await asyncio.sleep(0.2)
            (_, _, reads_box, reads), (_, _, _, ignores) = edges
            assert worker.status.behind
            assert reads.behind_statuses > 0
            assert reads_box.cloud_behind
            assert reads.resent == 0, reads.resent
            assert reads_box.held > 0
            assert ignores.resent > 0
            assert ignores.behind_statuses == 0
            assert reads.confirmations == ignores.confirmations == 0  # the hint had no way to reach them
            resume.set()
            for _, _, outbox, _ in edges:
                await outbox.flush()

            async def all_confirmed() -> bool:
                return all(o.unconfirmed() == 0 and o.depth() == 0 for _, _, o, _ in edges)

            await wait_for(all_confirmed, timeout=60, what="every batch confirmed")
            for _, gid, outbox, _ in edges:
                stored = await scalar(ingest_db, "SELECT count(*) FROM ingest_batches WHERE gateway_id = %s", (gid,))
                assert stored == outbox.last_seq

            async def cleared() -> bool:
                return not reads_box.cloud_behind

            await wait_for(cleared, timeout=20, what="the status cleared")
            assert not worker.status.behind
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
