"""The burst test of issue 21: 500 gateways send a backlog at once; every batch is stored once and
confirmed once, the real edges among them do not answer the backlog with a resend storm.

What runs (all real): PostgreSQL, Mosquitto, the ingest as ``guanjia cloud ingest --processes 2``
(the supervisor and two worker processes in one shared-subscription group), 495 simulated
gateways each with its own broker account and connection (:mod:`bench.ingest_fleet`, one
asyncio publisher process: they publish their whole backlog as fast as the broker takes it and record
every ``stored`` confirmation they get) and 5 real edge uplinks (outbox + uplink, end-to-end
acknowledgement, the edge's default confirmation timeout: 30 s, doubling per batch).

Size: ``make test`` runs 6,000 messages of 10 readings × 4 metrics (12 per gateway) so it fits
the suite's time on the shared 2-core machine; ``make chaos`` runs the full 60,000
(``GUANJIA_BURST_MESSAGES=60000``; 120 per gateway). Each run prints its figures.
For experiments the real edges' confirmation timeout (``GUANJIA_BURST_EDGE_TIMEOUT_S``, default the
edge's 30 s) and their hold on the ingest's ``behind`` status (``GUANJIA_BURST_EDGE_HOLD_S``, default
the edge's 600 s; 0 = ignore it) can be changed, and the real edges can start
``GUANJIA_BURST_EDGE_DELAY_S`` after the simulated ones (their batches then queue behind the backlog).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from bench import ingest_fleet
from cloud.registry import store
from cloud.registry.broker import BrokerAccount
from edge.config import UplinkConfig
from edge.outbox import Outbox
from edge.uplink import Uplink
from guanjia.core import wire
from tests.support.ingest import unique, wait_for
from tests.support.services import BrokerHandle

GATEWAYS = 500
REAL_EDGES = 5
READINGS, METRICS = 10, 4
MESSAGES = int(os.environ.get("GUANJIA_BURST_MESSAGES", "6000"))
PER_GATEWAY = max(2, MESSAGES // GATEWAYS)
GUANJIA = str(Path(sys.executable).parent / "guanjia")
_UPLINK = UplinkConfig.model_fields
EDGE_TIMEOUT_S = float(os.environ.get("GUANJIA_BURST_EDGE_TIMEOUT_S", _UPLINK["confirm_timeout_s"].default))
EDGE_DELAY_S = float(os.environ.get("GUANJIA_BURST_EDGE_DELAY_S", "0"))
EDGE_HOLD_S = float(os.environ.get("GUANJIA_BURST_EDGE_HOLD_S", _UPLINK["behind_hold_max_s"].default))


def _payloads(community: str, gateway: str, incarnation: str, now: int) -> list[bytes]:
    out = []
    for seq in range(1, PER_GATEWAY + 1):
        items = [{"device": f"{gateway}-d{i}", "ts": now + seq, "values": {f"m{k}": float(seq * 100 + i * 10 + k)
                                                                 for k in range(METRICS)}} for i in range(READINGS)]
        out.append(wire.encode("telemetry", gateway=gateway, community=community, seq=seq, sent_at=now + seq,
                               items=items, incarnation=incarnation))
    return out


def _ingest(db: str, broker: BrokerHandle, root: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "GUANJIA_DATABASE_URL": db, "GUANJIA_MQTT_URL": broker.admin_url, "GUANJIA_MODE": "test"}
    log = (root / "ingest.log").open("ab")
    return subprocess.Popen([GUANJIA, "cloud", "ingest", "--processes", "2", "--group", unique("burst-"),
                             "--client-id-prefix", unique("burst-"), "--metrics-port", "0"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


async def test_burst_from_500_gateways_is_stored_and_confirmed_once(ingest_db: str, broker: BrokerHandle,
                                                                    tmp_path: Path) -> None:
    community = unique("burst")
    names = [f"g{i:03d}" for i in range(GATEWAYS)]
    real, simulated = names[:REAL_EDGES], names[REAL_EDGES:]
    with psycopg.connect(ingest_db) as conn:
        ids = {gw: store.add_gateway(conn, community, gw) for gw in names}
        for gw in names:
            store.add_devices_bulk(conn, community, gw, [f"{gw}-d{i}" for i in range(READINGS)])
    accounts = {gw: BrokerAccount.gateway(community, gw, password=f"pw-{gw}") for gw in names}
    broker.server.set_accounts(accounts.values())  # one reload for all 500
    now = int(time.time() * 1000)
    payloads = {gw: _payloads(community, gw, f"{ids[gw]:016x}", now) for gw in simulated}
    # PostgreSQL and Mosquitto run as their own users; the fleet's files only need to be ours
    blob = tmp_path / "payloads.pkl"
    blob.write_bytes(pickle.dumps(payloads))
    fleet = ingest_fleet.launch(tmp_path, "burst", host=broker.host, port=broker.port, community=community,
                                gateways=[(gw, f"{ids[gw]:016x}", f"pw-{gw}") for gw in simulated], payloads=blob,
                                mode="burst", first=0, upto=PER_GATEWAY, confirm_timeout_s=600.0)
    ingest = _ingest(ingest_db, broker, tmp_path)
    outboxes: list[Outbox] = []
    uplinks: list[Uplink] = []
    tasks: list[asyncio.Task[None]] = []
    try:
        async with contextlib.AsyncExitStack() as stack:
            for gw in real:
                outbox = await stack.enter_async_context(Outbox(tmp_path / f"{gw}.db", gateway=gw,
                                                                batch_max_items=READINGS, flush_interval_s=0.05))
                config = UplinkConfig(url=broker.server.url_for(accounts[gw]), confirm_timeout_s=EDGE_TIMEOUT_S,
                                      behind_hold_max_s=EDGE_HOLD_S)  # the edge's own timeouts unless told
                uplink = Uplink(config,
                                gateway=gw, community=community, outbox=outbox, health=dict, heartbeat_s=600)
                outboxes.append(outbox)
                uplinks.append(uplink)
            log = tmp_path / "ingest.log"

            async def subscribed() -> bool:  # both processes' sessions (nothing is kept for a group without them)
                return log.exists() and log.read_text(errors="replace").count(" connected (session present") >= 2

            await wait_for(subscribed, timeout=120, what="two ingest processes connected")
            await asyncio.sleep(0.5)  # SUBACK
            # the backlog: the real edges' outboxes fill, then everyone sends at once
            for outbox in outboxes:
                for seq in range(1, PER_GATEWAY + 1):
                    for i in range(READINGS):
                        outbox.add_reading({"device": f"{outbox.gateway}-d{i}", "ts": now + seq,
                                            "values": {f"m{k}": float(seq * 100 + i * 10 + k) for k in range(METRICS)}})
                await outbox.flush()
            started = time.monotonic()
            ingest_fleet.go(fleet)
            await asyncio.sleep(EDGE_DELAY_S)
            tasks = [asyncio.create_task(u.run()) for u in uplinks]

            async def edges_confirmed() -> bool:
                return all(o.unconfirmed() == 0 and o.depth() == 0 for o in outboxes)

            await wait_for(edges_confirmed, timeout=600, what="every real edge's batches confirmed")
            records = await asyncio.to_thread(ingest_fleet.collect, fleet)
            elapsed = time.monotonic() - started
            edge_batches = [o.last_seq for o in outboxes]
    finally:
        for task in tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for proc, _ in fleet:
            if proc.poll() is None:
                proc.kill()
        if ingest.poll() is None:
            ingest.send_signal(signal.SIGTERM)
        try:
            ingest.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(ingest.pid, signal.SIGKILL)
    sent = sum(len(r["published"]) for r in records.values())
    resent = sum(u.resent for u in uplinks)
    total = sent + sum(edge_batches)
    print(f"burst: {total} messages from {GATEWAYS} gateways in {elapsed:.1f}s ({total / elapsed:.0f}/s); "
          f"real edges: {sum(edge_batches)} batches, {resent} resent, "
          f"{sum(u.confirmations for u in uplinks)} confirmations, "
          f"{sum(u.behind_hints for u in uplinks)} with the hint, "
          f"{sum(u.behind_statuses for u in uplinks)} behind statuses, {sum(o.held for o in outboxes)} resends held; "
          f"simulated: {sum(r['messages'] for r in records.values())} confirmation messages, "
          f"{sum(r['behind'] for r in records.values())} with the hint")
    assert sent == len(simulated) * PER_GATEWAY
    unconfirmed = {gw: sorted(set(map(int, r["published"])) - set(map(int, r["confirmed"])))
                   for gw, r in records.items()}
    assert not any(unconfirmed.values()), {gw: s[:5] for gw, s in unconfirmed.items() if s}
    repeats = sum(r["repeats"] for r in records.values())
    assert repeats == 0, f"{repeats} seqs confirmed more than once"
    with psycopg.connect(ingest_db) as conn:
        batches, points = conn.execute(
            "SELECT count(*), coalesce(sum(points), 0) FROM ingest_batches WHERE gateway_id = ANY(%s)",
            (list(ids.values()),)).fetchone() or (0, 0)
        stored_points, distinct = conn.execute(
            "SELECT count(*), count(DISTINCT (device_id, metric_id, time)) FROM telemetry t JOIN devices d "
            "ON d.id = t.device_id WHERE d.gateway_id = ANY(%s)", (list(ids.values()),)).fetchone() or (0, 0)
    # nothing lost, nothing stored twice: every batch once in ingest_batches, every point once
    assert int(batches) == total
    assert int(points) == int(stored_points) == int(distinct) == total * READINGS * METRICS
    # no resend storm: fewer resends than batches. Each is a duplicate the backlog did not need, and
    # the edge's doubling timeout bounds how often one batch goes again. Not zero at every size
    # (measured: 0 resent at 6,000 messages; at 60,000 on the loaded 2-core machine 0 of 600 in an
    # 86 s burst and 191 of 600 in a 133 s one; see docs/scaling.md, "The per-message cost of ingest")
    assert resent <= sum(edge_batches), (resent, edge_batches)
