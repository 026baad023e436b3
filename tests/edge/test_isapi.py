"""ISAPI access controllers over real sockets: the simulated controller's alert stream (digest auth,
multipart/JSON parts) read by the edge adapter — events mapped to the gate points, device time kept
as device_clock, a dropped stream reconnected with backoff, garbage parts costing only themselves,
wrong credentials refused without a reading."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest

from cloud.registry.broker import BrokerAccount
from device_profiles import find_profile
from edge.agent import Agent
from edge.config import AgentConfig, IsapiDeviceConfig, OutboxConfig, RulesConfig, UplinkConfig
from edge.inventory import merge_inventory
from edge.isapi import IsapiListener
from edge.outbox import Outbox, read_stats
from guanjia.core.wire import Quality, Scalar
from simulators import DeviceSpec, FleetSpec, SimulatedFleet, generate_fleet
from tests.support.edge.collector import Collector
from tests.support.services import BrokerHandle

PROFILE = "hikvision-isapi-acs"
ROOT = Path(__file__).resolve().parents[2]


class Sink:
    def __init__(self) -> None:
        self.readings: list[tuple[str, int, dict[str, Scalar], dict[str, Quality]]] = []
        self.events: list[tuple[str, str, dict[str, object]]] = []

    def reading(self, device: str, ts_ms: int, values: dict[str, Scalar], quality: dict[str, Quality]) -> None:
        self.readings.append((device, ts_ms, values, quality))

    def event(self, device: str, type_: str, data: dict[str, object]) -> None:
        self.events.append((device, type_, data))

    def last(self) -> dict[str, Scalar]:
        return self.readings[-1][2] if self.readings else {}


async def wait_for(what: str, check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def controller(tmp_path: Path, *, password: str | None = None, peak: float = 0.0
                     ) -> AsyncIterator[tuple[SimulatedFleet, IsapiListener, Sink]]:
    spec = FleetSpec(community="c1", devices=[DeviceSpec(
        id="b1-door-1", profile=PROFILE, building="b1",
        params={"heartbeat_s": 0.3, "peak_per_hour": peak, "password": "S3cret-pw"})])
    sink = Sink()
    async with SimulatedFleet(spec, tick_s=0.05) as fleet, \
            Outbox(tmp_path / "o.db", gateway="gw", synchronous="normal") as outbox:
        entry: dict[str, Any] = fleet.inventory["devices"][0]
        cfg = IsapiDeviceConfig(id=entry["id"], profile=PROFILE, url=entry["url"], username=entry["username"],
                                password=password or entry["password"], reconnect_initial_s=0.05,
                                reconnect_max_s=0.3, idle_timeout_s=2.0)
        listener = IsapiListener([(cfg, find_profile(PROFILE))], sink=sink, outbox=outbox)
        task = asyncio.create_task(listener.run())
        try:
            yield fleet, listener, sink
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def test_events_map_to_gate_points_with_device_time(tmp_path: Path) -> None:
    async with controller(tmp_path, peak=20_000.0) as (fleet, listener, sink):
        door = listener.devices["b1-door-1"]
        await wait_for("passages over the stream", lambda: int(sink.last().get("passages_in") or 0) > 0)
        assert ("b1-door-1", "device_online", {"url": door.config.url}) in sink.events
        fleet.inject("b1-door-1", "forced_open")
        await wait_for("door forced", lambda: sink.last().get("forced_open") is True)
        values = sink.last()
        assert values["door_state"] == 1
        assert values["last_event"] == 5
        fleet.inject("b1-door-1", "duress")
        await wait_for("duress pulse", lambda: sink.last().get("duress") is True)
        await wait_for("duress falls back with the next part", lambda: sink.last().get("duress") is False)
        fleet.inject("b1-door-1", "tamper")
        await wait_for("tamper", lambda: sink.last().get("tamper") is True)
        _device, ts, values, quality = sink.readings[-1]
        assert quality["tamper"] == Quality.GOOD
        assert abs(ts / 1000 - float(values["device_clock"] or 0)) < 5   # the controller's own dateTime
        assert door.connects == 1
        assert door.rejects == 0


async def test_passage_counts_go_on_after_an_agent_restart(tmp_path: Path) -> None:
    """The controller reports passages as events, so the agent keeps the count; it must not start
    again at 0 after a restart (the cloud would read a meter reset and lose that hour's passages)."""
    async with controller(tmp_path, peak=20_000.0) as (_fleet, _listener, sink):
        await wait_for("passages", lambda: int(sink.last().get("passages_in") or 0) >= 3)
        before = int(sink.last()["passages_in"] or 0)
    async with controller(tmp_path, peak=20_000.0) as (_fleet, _listener, sink):
        await wait_for("a reading after the restart", lambda: "passages_in" in sink.last())
        counts = [int(values["passages_in"] or 0) for _d, _ts, values, _q in sink.readings if "passages_in" in values]
        assert counts[0] >= before
        assert counts == sorted(counts)


async def test_clock_skew_is_flagged(tmp_path: Path) -> None:
    async with controller(tmp_path) as (fleet, listener, sink):
        await wait_for("first part", lambda: listener.devices["b1-door-1"].parts > 0)
        fleet.inject("b1-door-1", "clock_skew", params={"seconds": -600})
        fleet.inject("b1-door-1", "held_open")
        await wait_for("held open", lambda: sink.last().get("held_open") is True)
        _, ts, values, quality = sink.readings[-1]
        assert quality["held_open"] == Quality.CLOCK_SKEW
        assert ts / 1000 - float(values["device_clock"] or 0) > 590   # the agent's time, not the controller's


async def test_dropped_stream_reconnects_and_events_keep_coming(tmp_path: Path) -> None:
    async with controller(tmp_path) as (fleet, listener, sink):
        door = listener.devices["b1-door-1"]
        await wait_for("first part", lambda: door.parts > 0)
        fleet.inject("b1-door-1", "stream_drop", params={"every_s": 0.6})
        await wait_for("three reconnects", lambda: door.connects >= 4)
        fleet.inject("b1-door-1", "forced_open")
        await wait_for("the event after the drops", lambda: sink.last().get("forced_open") is True)
        assert door.rejects == 0   # a part cut in half is never read as garbage: the connection ended


async def test_garbage_parts_cost_only_themselves(tmp_path: Path) -> None:
    async with controller(tmp_path) as (fleet, listener, sink):
        door = listener.devices["b1-door-1"]
        await wait_for("first part", lambda: door.parts > 0)
        fleet.inject("b1-door-1", "garbage_frames", params={"probability": 1.0})
        await wait_for("garbage seen", lambda: door.rejects >= 4)
        fleet.inject("b1-door-1", "tamper")
        await wait_for("tamper through the garbage", lambda: sink.last().get("tamper") is True)
        assert door.connects == 1                               # no reconnect for garbage
        assert sum(1 for e in sink.events if e[1] == "payload_rejected") == 1   # at most one a minute
    assert read_stats(tmp_path / "o.db")["rejects"] >= 4


async def test_wrong_password_is_refused(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="edge.isapi")
    async with controller(tmp_path, password="wrong") as (fleet, listener, sink):
        await wait_for("a refusal logged", lambda: "credentials refused" in caplog.text)
        await asyncio.sleep(0.5)
        assert not sink.readings
        assert listener.devices["b1-door-1"].parts == 0
        assert fleet.devices["b1-door-1"].isapi is not None
        assert fleet.devices["b1-door-1"].isapi.controller.streams == 0


async def test_agent_configured_from_a_field_fleet_inventory(tmp_path: Path, broker: BrokerHandle) -> None:
    """The demo's path: a generated community with field devices, its inventory merged into the
    agent's config; lift boxes and the ISAPI controller report, and a forced door raises the
    unchanged gate rule."""
    community, gateway = f"c{uuid.uuid4().hex[:6]}", f"gw{uuid.uuid4().hex[:6]}"
    _, url = broker.add_gateway(community, gateway)
    devices_url = broker.add_account(BrokerAccount.devices(community))
    spec = generate_fleet(9, community, field_devices=True)
    async with SimulatedFleet(spec, mqtt_url=devices_url, tick_s=0.1) as fleet:
        inventory = tmp_path / "inventory.json"
        inventory.write_bytes(orjson.dumps(fleet.inventory))
        config = merge_inventory(AgentConfig(
            gateway=gateway, community=community, uplink=UplinkConfig(url=url, reconnect_initial_s=0.1),
            outbox=OutboxConfig(path=tmp_path / "o.db", flush_interval_s=0.1, synchronous="normal"),
            rules=RulesConfig(builtin=True, reload=False, state_path=tmp_path / "r.json")), inventory)
        async with Collector(broker.admin_url, community, gateway) as cloud, Agent(config) as agent:
            wanted = {"b1-gate-1", "b1-lift-1", "b1-lift-2", "b1-pump-1", "b1-meter-1"}
            # an idle lift box speaks again at its 15 s heartbeat (its first message went out before
            # the agent subscribed)
            await cloud.wait_for(lambda: {r["device"] for r in cloud.items("telemetry")} >= wanted, timeout=40)
            fleet.inject("b1-gate-1", "forced_open")
            await cloud.wait_for(lambda: any(a["device"] == "b1-gate-1" and a["rule"] == "gate-forced-open"
                                             and a["state"] == "raise" for a in cloud.items("alarms")))
            health = agent.health()
    assert health["isapi_devices"]["connected"] == 1
    assert health["isapi_devices"]["rejects"] == 0
    assert health["mqtt_devices"]["rejects"] == 0


async def test_isapi_probe_cli_shows_raw_parts_and_their_meaning(tmp_path: Path) -> None:
    spec = FleetSpec(community="c1", devices=[DeviceSpec(id="b1-door-1", profile=PROFILE,
                                                         params={"heartbeat_s": 0.3, "password": "S3cret-pw"})])
    secret = tmp_path / "door.secret"
    secret.write_text("S3cret-pw\n")
    async with SimulatedFleet(spec, tick_s=0.05) as fleet:
        door = fleet.inventory["devices"][0]
        fleet.inject("b1-door-1", "garbage_frames", params={"probability": 0.5})
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "guanjia.app.cli.main", "edge", "isapi-probe", door["url"], "--password-file",
            str(secret), "--parts", "6", "--timeout", "20", cwd=ROOT,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, err.decode()
    records = [json.loads(line) for line in out.decode().splitlines()]
    assert records[0]["status"] == 200
    assert records[0]["content_type"].startswith("multipart/mixed")
    assert len(records) == 7
    meanings = [str(r.get("meaning", r.get("garbage"))) for r in records[1:]]
    assert "heartbeat" in meanings
    assert any("raw" in r for r in records[1:])


async def test_work_status_puts_the_points_right_after_an_outage(tmp_path: Path) -> None:
    async with controller(tmp_path) as (fleet, listener, sink):
        door = listener.devices["b1-door-1"]
        await wait_for("first part", lambda: door.parts > 0)
        assert door.status_syncs == 1
        forced = fleet.inject("b1-door-1", "forced_open")
        await wait_for("door forced", lambda: sink.last().get("forced_open") is True)
        outage = fleet.inject("b1-door-1", "offline")
        await wait_for("the stream cut", lambda: not door.connected)
        fleet.clear(forced)                       # the door closes while nobody listens: event lost
        await asyncio.sleep(0.3)
        fleet.clear(outage)
        await wait_for("the status read on reconnect", lambda: door.status_syncs >= 2)
        assert sink.last().get("forced_open") is False    # latched alarm reset: the contact says closed
        assert sink.last().get("door_state") == 0
        # the status is read *before* the stream reopens: an event sent in between has no listener
        await wait_for("the stream back", lambda: door.connected)
        fleet.inject("b1-door-1", "tamper")
        await wait_for("the next event", lambda: sink.last().get("tamper") is True)
        assert ("b1-door-1", "events_missed") in [(d, t) for d, t, _ in sink.events]


async def test_a_door_forced_before_the_agent_connects_shows_as_open(tmp_path: Path) -> None:
    spec = FleetSpec(community="c1", devices=[DeviceSpec(id="b1-door-1", profile=PROFILE,
                                                         params={"heartbeat_s": 0.3, "password": "pw"})])
    sink = Sink()
    async with SimulatedFleet(spec, tick_s=0.05) as fleet, \
            Outbox(tmp_path / "o.db", gateway="gw", synchronous="normal") as outbox:
        fleet.inject("b1-door-1", "forced_open")
        fleet.inject("b1-door-1", "tamper")
        await asyncio.sleep(0.3)
        entry = fleet.inventory["devices"][0]
        cfg = IsapiDeviceConfig(id="b1-door-1", profile=PROFILE, url=entry["url"], password="pw")
        listener = IsapiListener([(cfg, find_profile(PROFILE))], sink=sink, outbox=outbox)
        task = asyncio.create_task(listener.run())
        try:
            await wait_for("the status reading", lambda: bool(sink.readings))
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    first = sink.readings[0][2]
    assert first["door_state"] == 1     # the contact: open (why — forced — went by before we listened)
    assert first["tamper"] is True


async def test_odd_parts_are_rejected_or_ignored_never_fatal(tmp_path: Path) -> None:
    from edge.alertstream import Part

    sink = Sink()
    async with Outbox(tmp_path / "o.db", gateway="gw", synchronous="normal") as outbox:
        cfg = IsapiDeviceConfig(id="d1", profile=PROFILE, url="http://127.0.0.1:9", password="pw")
        listener = IsapiListener([(cfg, find_profile(PROFILE))], sink=sink, outbox=outbox)
        device = listener.devices["d1"]
        json_part = {"content-type": "application/json"}
        odd = [
            {"eventType": "AccessControllerEvent", "AccessControllerEvent": {"majorEventType": 5, "subEventType": 75,
                                                                             "cardReaderNo": "front"}},
            {"eventType": "AccessControllerEvent", "AccessControllerEvent": {"majorEventType": [5], "serialNo": True}},
            {"eventType": "AccessControllerEvent", "AccessControllerEvent": "door"},
            {"eventType": "heartBeat", "dateTime": "yesterday"},
            {"eventType": "heartBeat", "dateTime": "2026-12-05T17:35:20"},   # no offset: no device clock
        ]
        for doc in odd:
            assert listener.on_part(device, Part(json_part, orjson.dumps(doc)))
        assert not listener.on_part(device, Part({"content-type": "image/jpeg"}, b"\xff\xd8"))
        assert not listener.on_part(device, Part(json_part, b"[1, 2]"))
        assert device.unknown_events == 2
        assert device.rejects == 1
        assert all("device_clock" not in values for _, _, values, _ in sink.readings)
        assert sink.readings[-1][2]["passages_in"] == 0   # a reader we cannot place counts nowhere


def test_an_agent_without_controllers_does_not_load_httpx() -> None:
    """httpx brings its command-line tool (click, rich, pygments) into memory: an agent loads it
    only when it follows or commands a controller (edge/isapi.py, "Memory")."""
    code = "import sys, edge.agent; print('httpx' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.strip() == "False"
