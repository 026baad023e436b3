"""One-key call (一键呼叫) end to end: a simulated call button → the real broker → a real edge agent
(its shipped rule call-button-press) → the uplink → the cloud's ingest and alarm processor → one P0
order with a 3-minute response commitment, routed to the butler on duty and followed by the
button's resident in the inbox. Not accepted in 3 minutes (the escalation run at pinned instants)
it climbs the chain by SMS; presses repeated in the episode open no second order."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
from psycopg.rows import dict_row

from cloud.ingest.service import components as ingest
from cloud.ops.alarms.processor import AlarmProcessor
from cloud.ops.escalation import escalate_due
from cloud.ops.model.policy import default_policy
from cloud.ops.routing.roster import on_duty
from cloud.registry import store
from cloud.registry.broker import BrokerAccount
from cloud.runtime.context import CloudConfig, Component, ServiceContext
from cloud.service import CloudService
from edge.agent import Agent
from guanjia.core.clock import SystemClock
from guanjia.core.settings import Settings
from simulators import DeviceSpec, FleetSpec, SimulatedFleet
from tests.support.edge.agent import mqtt_agent_config
from tests.support.services import BrokerHandle
from tests.support.workorders import DAY, NIGHT, add_butler

BUTTON = "b1-call-0301"


async def _rows(conn: psycopg.AsyncConnection[Any], sql: str, *args: Any) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(sql, args)
        return await cur.fetchall()


async def _until(what: str, check: Callable[[], Any], timeout: float = 30.0) -> None:
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(0.2)


async def test_a_press_opens_one_p0_for_the_butler_on_duty_and_escalates_unanswered(
        tmp_path: Path, fresh_db: str, broker: BrokerHandle) -> None:
    community, gateway = f"c{uuid.uuid4().hex[:6]}", f"gw{uuid.uuid4().hex[:6]}"
    policy = default_policy()
    with psycopg.connect(fresh_db) as sync:
        store.add_gateway(sync, community, gateway)
        store.add_building(sync, community, "b1")
        store.add_device(sync, community, BUTTON, gateway=gateway, building="b1", kind="call_button",
                         profile_id="call-button")
        row = sync.execute("INSERT INTO users (username, role, password_hash, display_name) "
                           "VALUES (%s, 'resident', 'x', '王奶奶') RETURNING id", (f"wang-{community}",)).fetchone()
        assert row is not None
        resident = int(row[0])
        store.set_device_owner(sync, community, BUTTON, resident)
    async with await psycopg.AsyncConnection.connect(fresh_db, autocommit=True) as seed:
        lead = await add_butler(seed, "组长", community=community, role="team_lead", phone="13900001111")
        day = await add_butler(seed, "白班管家", community=community, manager_id=lead, shifts=DAY, phone="13700000001")
        night = await add_butler(seed, "夜班管家", community=community, manager_id=lead, shifts=NIGHT)
    on_duty_now = day if on_duty(DAY, "Asia/Shanghai", SystemClock().now()) else night

    def processor(ctx: ServiceContext) -> list[Component]:
        return [AlarmProcessor(policy, ctx.clock)]

    settings = Settings(mode="test", database_url=fresh_db, mqtt_url=broker.admin_url,
                        secret_key="test-secret-key-for-the-call-button-0123456789")
    config = CloudConfig.from_settings(settings, api=False, migrate=False, prefer_timescale=False)
    _, uplink = broker.add_gateway(community, gateway)
    devices_url = broker.add_account(BrokerAccount.devices(community))
    agent_config = mqtt_agent_config(tmp_path, uplink, community, gateway, {BUTTON: "call-button"},
                                     builtin_rules=True)
    spec = FleetSpec(community=community, devices=[DeviceSpec(id=BUTTON, profile="call-button", building="b1")])
    async with CloudService(settings, config, components=[ingest, processor]), \
            await psycopg.AsyncConnection.connect(fresh_db, autocommit=True) as conn, \
            Agent(agent_config) as agent:
        async with asyncio.timeout(15):
            while not agent.listener.connected:
                await asyncio.sleep(0.05)
        async with SimulatedFleet(spec, mqtt_url=devices_url, tick_s=0.1) as fleet:
            async def orders() -> list[dict[str, Any]]:
                return await _rows(conn, "SELECT * FROM work_orders WHERE community = %s", community)

            await _until("button online", lambda: _ready(agent))
            fleet.inject(BUTTON, "pressed", duration_s=2)
            await _until("one order", lambda: _count(orders, 1))
            # pressed again, twice, while the first call is not answered: the same episode
            await asyncio.sleep(3)
            for _ in range(2):
                fleet.inject(BUTTON, "pressed", duration_s=1.5)
                await asyncio.sleep(2.5)
            await _until("presses reach the cloud", lambda: _presses(conn, community, 3))
            (wo,) = await orders()

        assert (wo["priority"], wo["device"], wo["device_kind"], wo["state"]) == ("P0", BUTTON, "call_button",
                                                                                  "assigned")
        assert wo["assignee_id"] == on_duty_now
        assert wo["respond_due"] - wo["created_at"] == timedelta(minutes=3)
        assert wo["reporter_user_id"] == resident
        alarms = await _rows(conn, "SELECT rule, severity FROM alarms WHERE device = %s", BUTTON)
        assert [(a["rule"], a["severity"]) for a in alarms] == [("call-button-press", "critical")]
        steps = await _rows(conn, "SELECT event, payload FROM notifications WHERE user_id = %s ORDER BY id", resident)
        assert [s["event"] for s in steps] == ["resident.received", "resident.assigned"]
        assert steps[1]["payload"]["butler"] in ("白班管家", "夜班管家")

        # the response commitment: nothing climbs before 3 minutes, the chain is called at 3
        assert await escalate_due(conn, policy, wo["created_at"] + timedelta(minutes=2, seconds=59)) == 0
        assert await escalate_due(conn, policy, wo["created_at"] + timedelta(minutes=3, seconds=1)) == 1
        texts = await _rows(conn, "SELECT butler_id, channel FROM notifications WHERE channel IN ('sms', 'voice') "
                                  "AND work_order_id = %s ORDER BY channel", wo["id"])
        assert [(t["butler_id"], t["channel"]) for t in texts] == [(lead, "sms"), (lead, "voice")]
        trail = await _rows(conn, "SELECT action FROM work_order_trail WHERE work_order_id = %s", wo["id"])
        assert "escalated" in [t["action"] for t in trail]


async def _ready(agent: Agent) -> bool:
    return agent.listener.online_count == 1


async def _count(orders: Callable[[], Any], n: int) -> bool:
    return len(await orders()) >= n


async def _presses(conn: psycopg.AsyncConnection[Any], community: str, n: int) -> bool:
    rows = await _rows(conn, "SELECT max(u.v) AS value FROM telemetry_readings r "
                             "CROSS JOIN LATERAL unnest(r.metric_ids, r.vals) AS u(mid, v) "
                             "JOIN metrics m ON m.id = u.mid JOIN devices d ON d.id = r.device_id "
                             "JOIN communities c ON c.id = d.community_id "
                             "WHERE c.code = %s AND m.name = 'presses'", community)
    return bool(rows) and rows[0]["value"] is not None and rows[0]["value"] >= n
