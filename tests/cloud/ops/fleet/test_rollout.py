"""Configuration rollout end to end: the API → the ``config-rollout`` component → the real broker →
real edge agents (subprocesses) polling a pymodbus server → their reports back into the rollout.

Covers: an invalid bundle refused in the cloud with file:line (nothing stored); a rules change
rolled out to two gateways reaching both (the new rule raises its alarm on each); a broken
profile pushed to the canary rolled back by the edge on its own, the rollout halted with the
second gateway never sent anything, then aborted; every action in the admin audit."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from cloud.auth.roles import Role
from cloud.ops.fleet.rollout import components as rollout_components
from cloud.registry import store
from cloud.runtime.context import CloudConfig
from cloud.service import CloudService
from device_profiles import find_profile
from edge.bundle import check_bundle
from guanjia.core.settings import Settings
from tests.support.edge.bundles import PROFILE_FILE, broken_profile, pressure_rule, pump_bundle
from tests.support.edge.collector import Collector
from tests.support.edge.process import AgentProcess
from tests.support.edge.servers import ProfileServer, Unit
from tests.support.services import BrokerHandle
from tests.support.webapp import MakeUser, browser_session

PUMP = find_profile("vfd-pump")
SECRET = "test-secret-key-for-the-rollout-tests-0123456789"


@pytest.fixture
def community() -> str:
    return f"c{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def cloud(fresh_db: str, broker: BrokerHandle) -> AsyncIterator[CloudService]:
    settings = Settings(mode="test", database_url=fresh_db, mqtt_url=broker.admin_url, secret_key=SECRET)
    config = CloudConfig.from_settings(settings, api=False, migrate=False, prefer_timescale=False)
    async with CloudService(settings, config, components=[rollout_components], edge_config=check_bundle) as service:
        yield service


@pytest.fixture
def agents(tmp_path: Path) -> Iterator[list[AgentProcess]]:
    made: list[AgentProcess] = []
    yield made
    for a in made:
        a.stop()


async def wait_items(wire: Collector, kind: str, predicate: Callable[[Mapping[str, Any]], bool],
                     timeout: float) -> None:
    await wire.wait_for(lambda: any(predicate(item) for item in wire.items(kind)), timeout=timeout)


async def wait_rollout(client: httpx.AsyncClient, headers: dict[str, str], rollout_id: int, final: set[str],
                       timeout: float = 60.0) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            resp = await client.get(f"/api/v1/config-rollouts/{rollout_id}", headers=headers)
            assert resp.status_code == 200, resp.text
            if resp.json()["state"] in final:
                return dict(resp.json())
            await asyncio.sleep(0.2)


async def test_invalid_bundle_is_refused_in_the_cloud_with_file_and_line(
        client: httpx.AsyncClient, make_user: MakeUser, fresh_db: str, community: str) -> None:
    with psycopg.connect(fresh_db) as conn:
        gateway_id = store.add_gateway(conn, community, "gw-a")
    engineer = await make_user(Role.engineer, community)
    bundle = pump_bundle(1502, [("pump-1", 1)])
    bundle["devices.yaml"] = bundle["devices.yaml"].replace("profile: profiles/pump.yaml", "profile: vfd-pmp")
    bundle["rules/site.yaml"] = "version: 1\nrules:\n  - id: x\n    severity: loud\n"
    resp = await client.post(f"/api/v1/gateways/{gateway_id}/config", headers=engineer.headers,
                             json={"files": bundle})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_config"
    issues = {(i["file"], i["line"], i["field"]) for i in error["detail"]["issues"]}
    line = bundle["devices.yaml"].splitlines().index("    profile: vfd-pmp") + 1
    assert ("devices.yaml", line, "links.0.devices.0.profile") in issues
    assert any(f == "rules/site.yaml" and line == 4 and field == "rules.0.severity" for f, line, field in issues)
    assert all(i["gateway"] == f"{community}/gw-a" for i in error["detail"]["issues"])
    # a file the bundle may not hold: refused by name, before anything is unpacked
    resp = await client.post(f"/api/v1/gateways/{gateway_id}/config", headers=engineer.headers,
                             json={"files": {**pump_bundle(1502, [("pump-1", 1)]), "../agent.yaml": "x"}})
    assert resp.status_code == 422
    assert resp.json()["error"]["detail"]["issues"][0]["file"] == "../agent.yaml"
    with psycopg.connect(fresh_db) as conn:
        assert conn.execute("SELECT count(*) FROM edge_config_versions").fetchone() == (0,)
    # a valid one is stored (and audited), not pushed
    resp = await client.post(f"/api/v1/gateways/{gateway_id}/config", headers=engineer.headers,
                             json={"files": pump_bundle(1502, [("pump-1", 1)]), "note": "first"})
    assert resp.status_code == 201, resp.text
    assert resp.json()["version"] == check_bundle(pump_bundle(1502, [("pump-1", 1)]))
    # butlers and residents may not
    for role in (Role.butler, Role.resident):
        other = await make_user(role, community)
        resp = await client.post(f"/api/v1/gateways/{gateway_id}/config", headers=other.headers,
                                 json={"files": pump_bundle(1502, [("pump-1", 1)])})
        assert resp.status_code == 403


async def test_rules_change_reaches_two_gateways_and_a_broken_profile_is_rolled_back_on_the_canary(
        cloud: CloudService, client: httpx.AsyncClient, make_user: MakeUser, broker: BrokerHandle, fresh_db: str,
        community: str, agents: list[AgentProcess], tmp_path: Path) -> None:
    engineer = await make_user(Role.engineer, community)
    units = [Unit(1, PUMP, {"outlet_pressure": 2.5, "pressure_setpoint": 3.0}),
             Unit(2, PUMP, {"outlet_pressure": 2.5, "pressure_setpoint": 3.0})]
    names = ["gw-a", "gw-b"]
    with psycopg.connect(fresh_db) as conn:
        ids = [store.add_gateway(conn, community, name) for name in names]
    async with ProfileServer(units) as server, \
            Collector(broker.admin_url, community, "gw-a") as wire_a, \
            Collector(broker.admin_url, community, "gw-b") as wire_b:
        wires = [wire_a, wire_b]
        for index, name in enumerate(names):
            _, url = broker.add_gateway(community, name)
            workdir = tmp_path / name
            workdir.mkdir()
            agents.append(AgentProcess(workdir, url, community, name, server.port, [
                {"id": f"pump-{index + 1}", "profile": "vfd-pump", "unit": index + 1,
                 "report_by_exception": False}]).start())
        # each gateway's current configuration, stored in the cloud (its profile as a bundle file)
        for index, gateway_id in enumerate(ids):
            resp = await client.post(f"/api/v1/gateways/{gateway_id}/config", headers=engineer.headers, json={
                "files": pump_bundle(server.port, [(f"pump-{index + 1}", index + 1)])})
            assert resp.status_code == 201, resp.text
        for wire in wires:
            await wait_items(wire, "events", lambda e: e["type"] == "device_online", timeout=30)

        # 1. a rules change to both, canary first: both apply it, and the new rule fires on each
        resp = await client.post("/api/v1/config-rollouts", headers=engineer.headers, json={
            "gateways": ids, "files": {"rules/site.yaml": pressure_rule("site-pressure-high", 2.0)},
            "canary": 1, "percent": 50, "probation_s": 2, "note": "site pressure rule"})
        assert resp.status_code == 201, resp.text
        first = resp.json()
        assert [t["stage"] for t in first["targets"]] == [0, 2]
        done = await wait_rollout(client, engineer.headers, first["id"], {"completed", "halted"})
        assert done["state"] == "completed", done
        assert [t["state"] for t in done["targets"]] == ["applied", "applied"]
        for wire in wires:
            await wait_items(wire, "alarms", lambda a: a.get("rule") == "site-pressure-high" and a["state"] == "raise",
                             timeout=20)
        for gateway_id, target in zip(ids, done["targets"], strict=True):
            reported = (await client.get(f"/api/v1/gateways/{gateway_id}/config", headers=engineer.headers)).json()
            assert reported["reported"]["state"] == "good"
            assert reported["reported"]["running"] == target["version"]
        good_a = done["targets"][0]["version"]

        # 2. a broken profile: the canary rolls it back by itself, the rollout halts, gw-b gets nothing
        resp = await client.post("/api/v1/config-rollouts", headers=engineer.headers, json={
            "gateways": ids, "files": {PROFILE_FILE: broken_profile()}, "canary": 1, "percent": 50,
            "probation_s": 20, "note": "new pump registers"})
        assert resp.status_code == 201, resp.text
        second = resp.json()
        halted = await wait_rollout(client, engineer.headers, second["id"], {"halted", "completed"})
        assert halted["state"] == "halted", halted
        canary, rest = halted["targets"]
        assert (canary["state"], canary["reason"]) == ("failed", "devices_offline")
        assert "pump-1" in canary["detail"]
        assert rest["state"] == "waiting"
        assert "devices_offline" in halted["halt_reason"]
        reported = (await client.get(f"/api/v1/gateways/{ids[0]}/config", headers=engineer.headers)).json()
        assert reported["reported"]["state"] == "rolled_back"
        assert reported["reported"]["running"] == good_a  # the last good version runs again
        # the pump answers again under the restored profile
        count = len(wire_a.items("telemetry"))
        await wire_a.wait_for(lambda: any(r["device"] == "pump-1" and r.get("quality") == "good"
                                          for r in wire_a.items("telemetry")[count:]), timeout=20)
        assert (await client.get(f"/api/v1/gateways/{ids[1]}/config", headers=engineer.headers)).json()[
            "reported"]["running"] == done["targets"][1]["version"]
        assert not any(s.get("health", {}).get("config", {}).get("attempted") == rest["version"]
                       for s in wire_b.status)

        # 3. the page: each gateway's running version and last push beside its health; the halted rollout
        page_headers = await browser_session(client, engineer)
        page = await client.get("/fleet/config", headers=page_headers)
        assert page.status_code == 200
        row_a = page.text.split(f'data-gateway="{community}/gw-a"')[1].split("</tr>")[0]
        assert good_a in row_a
        assert "已自动回滚" in row_a  # rolled back, in Chinese by default
        assert "devices_offline" in row_a
        assert done["targets"][1]["version"] in page.text.split(f'data-gateway="{community}/gw-b"')[1]
        halted_row = page.text.split(f'data-rollout="{second["id"]}"')[1].split("</tr>")[0]
        assert "已暂停" in halted_row
        assert f"/fleet/config/rollouts/{second['id']}/resume" in halted_row
        english = await client.get("/fleet/config?lang=en", headers=page_headers)
        assert "Rolled back" in english.text

        # 4. the engineer aborts it (from the page); it stays aborted
        resp = await client.post(f"/fleet/config/rollouts/{second['id']}/abort", headers=page_headers,
                                 follow_redirects=False)
        assert resp.status_code == 303
        resp = await client.get(f"/api/v1/config-rollouts/{second['id']}", headers=engineer.headers)
        assert resp.json()["state"] == "aborted"
        resp = await client.post(f"/api/v1/config-rollouts/{second['id']}/resume", headers=engineer.headers)
        assert resp.status_code == 409

    with psycopg.connect(fresh_db) as conn:
        actions = [r[0] for r in conn.execute("SELECT action FROM admin_audit ORDER BY id")]
    assert actions.count("config.version_uploaded") == 2
    assert actions.count("config.rollout_started") == 2
    assert "config.rollout_completed" in actions
    assert "config.rollout_halted" in actions
    assert actions[-1] == "config.rollout_aborted"
