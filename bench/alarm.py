"""Alarm benchmark: fault → work order committed → the butler's SSE message received.

What runs (all real, on free ports): a private PostgreSQL and Mosquitto; two ingest workers
(``cloud.ingest.IngestWorker``, MQTT v5 shared subscription, manual acks); the alarm processor
(``cloud.ops.alarms.processor.AlarmProcessor``, woken by ingest's hook/NOTIFY); the product's FastAPI
app on uvicorn with auth; one SSE client per butler on ``/api/v1/inbox/stream`` (as a staff user
watching each butler's stream with ``?butler_id=``).

The fleet: ``devices`` devices (elevators, pumps, meters, gates) across 10 gateways and 20
buildings of one community, registered in the registry, with 2 full-time butlers per building and
a team lead + property manager.

The edge side is EMULATED, not the real agent: each gateway is a loop that "polls" its devices
every ``poll_period_ms`` at its own random phase (like the edge scheduler) and, at the first poll
after a fault is injected, publishes the alarm as the agent's uplink does (wire contract v1,
``alarms`` kind, per-gateway ``seq``, QoS 1, gateway credentials and ACL). So
``fault_to_notify`` = (wait for the gateway's next poll: 0 … one poll period, real time) + MQTT +
ingest commit + alarm processor (alarm, work order, routing, outbox) + NOTIFY → SSE. Modbus
decoding and the agent's rule evaluation are not in the path (they are measured by the ``edge``
and ``rules`` benchmarks).

Fault injection: ``faults`` devices are faulted at the same instant. To prove idempotency under
redelivery, every alarm message is published twice (same seq: what a broker redelivers after a
lost PUBACK) and the same fault is raised again by a later poll with a new seq (what an agent
replays from its outbox); and one ingest worker is killed (cancelled mid-stream) and restarted
during the burst. ``duplicate_work_orders`` counts devices with more than one work order.

The residents' side of the same burst (issue 18): ``RESIDENTS`` residents, each with the phone
page's live stream open (``/api/v1/resident/inbox/stream``), report a fault of a device of their
own (never a faulted one) through ``POST /api/v1/reports`` at the instant the faults are injected.
``fault_to_resident_notify`` = that POST sent → the resident's stream says the order is assigned,
with the butler's name (``resident.assigned``): API + report + routing + outbox + NOTIFY → SSE,
under the alarm burst. No gateway poll is in this path (a resident's report is not polled), which
is why its target is the butlers' p99 + 1 s and not a poll period of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import random
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson

log = logging.getLogger(__name__)

KINDS = [("elevator", "elevator_trapped"), ("pump", "pump_dry_run"), ("meter", "meter_overcurrent"),
         ("gate", "gate_forced_open")]
GATEWAYS = 10
BUILDINGS = 20
COMMUNITY = "bench"
RESIDENTS = 20


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def _stage(done: dict[str, float], injected: dict[str, float], q: float) -> float:
    values = [(t - injected[d]) * 1000 for d, t in done.items() if d in injected]
    return round(_pct(values, q), 1) if values else -1.0


class EmulatedGateway:
    """One gateway's uplink: poll tick at a random phase, publish alarms for faulted devices."""

    def __init__(self, code: str, devices: list[tuple[str, tuple[str, str]]], mqtt_url: str,
                 poll_s: float) -> None:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        from guanjia.core.settings import MqttUrl

        target = MqttUrl.parse(mqtt_url)
        self.code = code
        self.devices = devices
        self.poll_s = poll_s
        self.seq = 0
        self.sent: set[str] = set()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{code}", protocol=mqtt.MQTTv5)
        self.client.username_pw_set(target.username, target.password)
        self.client.connect(target.host, target.port, 30)
        self.client.loop_start()

    def _publish(self, items: list[dict[str, Any]], twice: bool) -> None:
        from guanjia.core import wire

        self.seq += 1
        payload = wire.encode("alarms", gateway=self.code, community=COMMUNITY, seq=self.seq,
                              sent_at=int(time.time() * 1000), items=items)
        topic = wire.topic(COMMUNITY, self.code, "alarms")
        self.client.publish(topic, payload, qos=1)
        if twice:  # a broker redelivery of the same message (same seq)
            self.client.publish(topic, payload, qos=1)

    async def run(self, faults: dict[str, float], stop: asyncio.Event) -> None:
        await asyncio.sleep(random.uniform(0, self.poll_s))
        replayed: set[str] = set()
        while not stop.is_set():
            now_ms = int(time.time() * 1000)
            items = []
            for device, (kind, rule) in ((d, k) for d, k in self.devices if d in faults):
                if device in self.sent and device in replayed:
                    continue
                items.append({"device": device, "rule": rule, "state": "raise", "severity": "critical",
                              "ts": int(faults[device] * 1000) if device not in self.sent else now_ms,
                              "message": f"{kind} fault", "work_order": True, "labels": {"kind": kind}})
                if device in self.sent:
                    replayed.add(device)  # raised again by a later poll: a new seq, same fault
                self.sent.add(device)
            if items:
                self._publish(items, twice=True)
            await asyncio.sleep(self.poll_s)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


async def _sse(url: str, token: str, butler_id: int, received: dict[int, tuple[float, str]],
               ready: asyncio.Event, counter: list[int]) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http, http.stream(
            "GET", f"{url}/api/v1/inbox/stream", params={"butler_id": butler_id}, headers=headers) as resp:
        event = ""
        async for line in resp.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                if event == "ready":
                    counter[0] += 1
                    ready.set()
                elif event == "work_order.assigned":
                    data = orjson.loads(line[5:])
                    wo = data["payload"]["work_order"]
                    received.setdefault(int(wo["id"]), (time.time(), str(wo["device"])))


async def _resident(url: str, token: str, device: str, posted: dict[str, float], received: dict[str, float],
                    ready: asyncio.Event, counter: list[int], go: asyncio.Event) -> None:
    """One resident's phone: the live inbox stream, and at ``go`` a report of ``device`` through
    the API; done when the stream says the order is assigned (``resident.assigned``)."""
    import httpx

    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(timeout=httpx.Timeout(10, read=None)) as http:

        async def report() -> None:
            await go.wait()
            posted[device] = time.time()
            resp = await http.post(f"{url}/api/v1/reports", headers=headers, json={
                "community": COMMUNITY, "device": device, "text": f"{device} 有故障 (bench)"})
            resp.raise_for_status()

        async with asyncio.TaskGroup() as tg, http.stream("GET", f"{url}/api/v1/resident/inbox/stream",
                                                          headers=headers) as resp:
            event = ""
            async for line in resp.aiter_lines():
                if line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    if event == "ready":
                        counter[0] += 1
                        ready.set()
                        tg.create_task(report())
                    elif event == "resident.assigned":
                        received.setdefault(device, time.time())
                        return


def _field_main(config: dict[str, Any], to_parent: Any) -> None:
    """Child process: the butlers' phones (SSE clients) and the emulated gateways."""
    to_parent.put(("result", asyncio.run(_field(config, to_parent))))


async def _field(config: dict[str, Any], to_parent: Any) -> dict[str, Any]:
    poll_ms, faults = int(config["poll_ms"]), int(config["faults"])
    rng = random.Random(11)
    received: dict[int, tuple[float, str]] = {}
    ready, counter = asyncio.Event(), [0]
    fleet: dict[str, list[tuple[str, tuple[str, str]]]] = {
        gw: [(d, (k[0], k[1])) for d, k in devs] for gw, devs in config["fleet"].items()}
    stop, go = asyncio.Event(), asyncio.Event()
    posted: dict[str, float] = {}
    heard: dict[str, float] = {}
    r_ready, r_counter = asyncio.Event(), [0]
    async with asyncio.TaskGroup() as tg:
        streams = [tg.create_task(_sse(config["api"], config["token"], b, received, ready, counter))
                   for b in config["butlers"]]
        residents = [tg.create_task(_resident(config["api"], token, device, posted, heard, r_ready, r_counter, go))
                     for token, device in config["residents"]]
        deadline = time.monotonic() + 30
        while (counter[0] < len(streams) or r_counter[0] < len(residents)) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        gateways = [EmulatedGateway(gw, devs, config["mqtt"][gw], poll_ms / 1000) for gw, devs in fleet.items()]
        injected: dict[str, float] = {}
        gw_tasks = [tg.create_task(g.run(injected, stop)) for g in gateways]
        await asyncio.sleep(poll_ms / 1000 * 2)  # gateways polling, nothing faulty yet
        reported = {device for _token, device in config["residents"]}
        all_devices = [d for devs in fleet.values() for d, _ in devs if d not in reported]
        t0 = time.time()
        for device in rng.sample(all_devices, faults):
            injected[device] = t0
        go.set()  # the residents report in the same instant, into the same burst
        to_parent.put(("injected", t0))
        deadline = time.monotonic() + 30 + poll_ms / 1000 * 3
        while (len(received) < faults or len(heard) < len(residents)) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await asyncio.sleep(poll_ms / 1000 * 2 + 1)  # let the replays (new seq) arrive too
        stop.set()
        for t in [*gw_tasks, *streams, *residents]:
            t.cancel()
        for g in gateways:
            g.close()
    return {"injected": injected, "received": received, "posted": posted, "heard": heard}


async def _run(pg_url: str, broker: Any, devices: int, faults: int, poll_ms: int,
               residents: int = RESIDENTS) -> dict[str, Any]:
    import psycopg
    import uvicorn

    from cloud.app import create_app
    from cloud.auth.roles import Role
    from cloud.auth.users import create_user
    from cloud.db.pool import open_pool
    from cloud.ingest.worker import IngestWorker, WorkerOptions
    from cloud.ops.alarms.processor import AlarmProcessor
    from cloud.ops.model.policy import default_policy
    from cloud.registry import store
    from cloud.registry.broker import BrokerAccount
    from cloud.runtime.hooks import IngestHooks
    from cloud.runtime.metrics import Metrics
    from guanjia.core.clock import SystemClock
    from guanjia.core.ports import free_port
    from guanjia.core.settings import MqttUrl, Settings

    rng = random.Random(7)
    fleet: dict[str, list[tuple[str, tuple[str, str]]]] = {f"gw{g:02d}": [] for g in range(GATEWAYS)}
    with psycopg.connect(pg_url) as sconn:
        store.ensure_community(sconn, COMMUNITY)
        for b in range(BUILDINGS):
            store.add_building(sconn, COMMUNITY, f"b{b:02d}")
        for gw in fleet:
            store.add_gateway(sconn, COMMUNITY, gw)
        for i in range(devices):
            kind, rule = KINDS[i % len(KINDS)]
            gw = f"gw{i % GATEWAYS:02d}"
            code = f"{kind}-{i:04d}"
            store.add_device(sconn, COMMUNITY, code, gateway=gw, building=f"b{i % BUILDINGS:02d}", kind=kind)
            fleet[gw].append((code, (kind, rule)))
        manager = sconn.execute("INSERT INTO butlers (name, community, role) VALUES ('经理', %s, 'manager') "
                               "RETURNING id", (COMMUNITY,)).fetchone()
        lead = sconn.execute("INSERT INTO butlers (name, community, role, manager_id) VALUES ('组长', %s, 'team_lead', "
                            "%s) RETURNING id", (COMMUNITY, manager[0] if manager else None)).fetchone()
        butler_ids = []
        for b in range(BUILDINGS):
            for k in range(2):
                row = sconn.execute(
                    "INSERT INTO butlers (name, community, buildings, skills, manager_id, star_level) "
                    "VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
                    (f"管家{b:02d}-{k}", COMMUNITY, [f"b{b:02d}"], ["elevator", "water", "electrical", "access"],
                     lead[0] if lead else None, rng.randint(2, 5))).fetchone()
                assert row is not None
                butler_ids.append(int(row[0]))
        sconn.commit()
    accounts = {gw: BrokerAccount.gateway(COMMUNITY, gw) for gw in fleet}
    cloud = BrokerAccount("cloud", secrets.token_urlsafe(12), [("read", "guanjia/v1/#")])
    broker.set_accounts([*accounts.values(), cloud])
    cloud_url = broker.url_for(cloud)

    settings = Settings(mode="test", database_url=pg_url, secret_key=secrets.token_urlsafe(32))
    metrics, hooks = Metrics(), IngestHooks()
    async with open_pool(pg_url, min_size=2, max_size=12) as pool:
        async with pool.connection() as conn:
            await create_user(conn, "bench-engineer", "bench-password-123!", Role.engineer, [COMMUNITY])
            for i in range(residents):
                await create_user(conn, f"bench-resident-{i}", "bench-password-123!", Role.resident, [COMMUNITY])
        # each resident reports a device of their own, never one of the faulted ones (the field
        # leaves these out of its sample): a new order each, routed and assigned
        resident_devices = [code for devs in fleet.values() for code, _ in devs][-residents:] if residents else []
        app = create_app(settings, pool, metrics=metrics)
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off", access_log=False))
        ctx = SimpleNamespace(pool=pool, metrics=metrics, hooks=hooks, database_url=pg_url)
        processor = AlarmProcessor(default_policy(), SystemClock(), poll_interval=1.0)

        def worker(index: int) -> IngestWorker:
            options = WorkerOptions(client_id=f"bench-ingest-{index}", group="bench-ingest")
            return IngestWorker(pool, MqttUrl.parse(cloud_url), options=options, metrics=metrics, hooks=hooks,
                                clock=SystemClock())

        async with asyncio.TaskGroup() as tg:
            api_task = tg.create_task(server.serve())
            workers = [tg.create_task(worker(i).run()) for i in range(2)]
            proc_task = tg.create_task(processor.run(ctx))
            while not server.started:
                await asyncio.sleep(0.05)
            import httpx

            async with httpx.AsyncClient() as http:
                async def login(username: str) -> str:
                    resp = await http.post(f"http://127.0.0.1:{port}/api/v1/auth/token", data={
                        "username": username, "password": "bench-password-123!"})
                    return str(resp.json()["access_token"])

                token = await login("bench-engineer")
                resident_logins = [(await login(f"bench-resident-{i}"), resident_devices[i]) for i in range(residents)]
            await asyncio.sleep(1.0)  # ingest sessions subscribed
            # the field (gateways + butlers' phones) is another process: it must not share this
            # process's event loop and GIL with the cloud service it measures
            mp = multiprocessing.get_context("spawn")
            to_parent: Any = mp.Queue()
            field = mp.Process(target=_field_main, args=({
                "api": f"http://127.0.0.1:{port}", "token": token, "butlers": butler_ids, "fleet": fleet,
                "mqtt": {gw: broker.url_for(accounts[gw]) for gw in fleet}, "poll_ms": poll_ms, "faults": faults,
                "residents": resident_logins,
            }, to_parent), daemon=True)
            field.start()
            message = await asyncio.to_thread(to_parent.get, True, 120)
            assert message[0] == "injected", message
            # kill one ingest worker during the burst and start it again
            await asyncio.sleep(poll_ms / 1000 / 2)
            workers[0].cancel()
            await asyncio.sleep(0.3)
            workers[0] = tg.create_task(worker(0).run())
            message = await asyncio.to_thread(to_parent.get, True, 120)
            assert message[0] == "result", message
            injected: dict[str, float] = message[1]["injected"]
            received: dict[int, tuple[float, str]] = {int(k): (v[0], v[1]) for k, v in message[1]["received"].items()}
            posted: dict[str, float] = message[1]["posted"]
            heard: dict[str, float] = message[1]["heard"]
            await asyncio.to_thread(field.join, 30)
            for t in [proc_task, *workers]:
                t.cancel()
            server.should_exit = True
            with contextlib.suppress(asyncio.CancelledError):
                await api_task
        async with pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) FROM work_orders")
            work_orders = int((await cur.fetchone() or (0,))[0])
            cur = await conn.execute("SELECT count(*) FROM (SELECT device FROM work_orders GROUP BY device "
                                     "HAVING count(*) > 1) d")
            duplicates = int((await cur.fetchone() or (0,))[0])
            cur = await conn.execute("SELECT count(*) FROM alarm_events")
            events = int((await cur.fetchone() or (0,))[0])
            cur = await conn.execute("SELECT work_order_id, butler_id, id FROM notifications WHERE channel = 'inbox' "
                                     "AND event = 'work_order.assigned'")
            inbox = await cur.fetchall()
            missing = [r for r in inbox if r[0] not in received]
            if missing:
                log.warning("inbox messages not received over SSE: %s", missing)
            cur = await conn.execute("SELECT device_code, min(received_at) FROM alarm_events GROUP BY device_code")
            ingested = {d: t.timestamp() for d, t in await cur.fetchall()}
            cur = await conn.execute("SELECT device, min(created_at) FROM work_orders GROUP BY device")
            opened = {d: t.timestamp() for d, t in await cur.fetchall()}
    latencies = [(t - injected[device]) * 1000 for t, device in received.values() if device in injected]
    resident_latencies = [(heard[d] - posted[d]) * 1000 for d in heard if d in posted]
    return {
        "faults": faults,
        "devices": devices,
        "poll_period_ms": poll_ms,
        "fault_to_notify_p50_ms": round(statistics.median(latencies), 1) if latencies else -1.0,
        "fault_to_notify_p99_ms": round(_pct(latencies, 99), 1) if latencies else -1.0,
        "fault_to_notify_max_ms": round(max(latencies), 1) if latencies else -1.0,
        "notified": len(latencies),
        "residents": residents,
        "residents_notified": len(resident_latencies),
        "fault_to_resident_notify_p50_ms": round(statistics.median(resident_latencies), 1)
        if resident_latencies else -1.0,
        "fault_to_resident_notify_p99_ms": round(_pct(resident_latencies, 99), 1) if resident_latencies else -1.0,
        "work_orders": work_orders,
        "duplicate_work_orders": duplicates,
        "alarm_events_ingested": events,
        "fault_to_ingest_p50_ms": _stage(ingested, injected, 50),
        "fault_to_ingest_p99_ms": _stage(ingested, injected, 99),
        "fault_to_work_order_p50_ms": _stage(opened, injected, 50),
        "fault_to_work_order_p99_ms": _stage(opened, injected, 99),
        "butlers": len(butler_ids),
        "apply_p50_ms": round(processor.m_apply.quantile(0.5) * 1000, 1),
        "apply_p99_ms": round(processor.m_apply.quantile(0.99) * 1000, 1),
        "pool_wait_p99_ms": round(processor.m_checkout.quantile(0.99) * 1000, 1),
    }


def run(quick: bool = False) -> dict[str, Any]:
    from cloud.db.migrate import migrate
    from cloud.registry.broker import BrokerAccount
    from guanjia.app.stack import MosquittoServer, PostgresServer

    directory = Path(tempfile.mkdtemp(prefix="guanjia-bench-alarm-"))
    directory.chmod(0o755)
    pg = PostgresServer(directory / "pg")
    broker = MosquittoServer(directory / "mq")
    broker.set_accounts([BrokerAccount("admin", secrets.token_urlsafe(12), [("readwrite", "#")])])
    pg.start()
    broker.start()
    try:
        url = pg.dsn
        migrate(url, prefer_timescale=False)
        return asyncio.run(_run(url, broker, devices=1000, faults=100, poll_ms=1000))
    finally:
        broker.stop()
        pg.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    print(orjson.dumps(run(), option=orjson.OPT_INDENT_2).decode())
