"""Gateway enrolment against the real broker: a gateway joins with a bootstrap token only (the
agent's own enrolment code, then a real agent subprocess that connects with what it got); a token
is single use and expires; rotation replaces the password; revocation locks the gateway out."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import yaml
from fastapi import FastAPI

from cloud.auth.roles import Role
from cloud.registry import store
from edge.enroll import Enrolment, fetch_enrolment, write_enrolment
from edge.errors import EnrollError
from guanjia.core.settings import Settings
from tests.support import mqtt
from tests.support.edge.collector import Collector
from tests.support.edge.process import AgentProcess
from tests.support.edge.profiles import PUMP_VALUES, TEST_PUMP, write_profile
from tests.support.edge.servers import ProfileServer, Unit
from tests.support.services import BrokerHandle
from tests.support.webapp import TEST_SECRET, MakeUser


@pytest.fixture
def settings(web_db: str, tmp_path: Path, own_broker: BrokerHandle) -> Settings:
    """The app's settings with the broker's files: enrolment edits them and reloads the broker."""
    pid_file = tmp_path / "broker.pid"
    pid_file.write_text(str(own_broker.server.pid()))
    directory = own_broker.server.directory
    return Settings(mode="test", database_url=web_db, secret_key=TEST_SECRET, run_dir=tmp_path / "run",
                    mqtt_url=own_broker.admin_url, broker_passwd_file=directory / "passwd",
                    broker_acl_file=directory / "acl", broker_pid_file=pid_file)


@pytest.fixture
def gateway(web_db: str) -> tuple[int, str, str]:
    community, code = f"c{uuid.uuid4().hex[:6]}", "gw-new"
    with psycopg.connect(web_db) as conn:
        gateway_id = store.add_gateway(conn, community, code)
    return gateway_id, community, code


async def _token(client: httpx.AsyncClient, headers: dict[str, str], gateway_id: int) -> str:
    resp = await client.post(f"/api/v1/gateways/{gateway_id}/bootstrap-tokens", headers=headers, json={})
    assert resp.status_code == 201, resp.text
    token: str = resp.json()["token"]
    return token


def _enrol(app: FastAPI, token: str) -> Any:
    return fetch_enrolment("http://cloud", token, transport=httpx.ASGITransport(app=app))


async def _can_connect(broker: BrokerHandle, enrolment: Enrolment) -> bool:
    probe = await asyncio.to_thread(mqtt.connect, broker.host, broker.port, enrolment.username, enrolment.password)
    try:
        return probe.refused is None and probe.client.is_connected()
    finally:
        probe.close()


async def test_a_new_gateway_joins_with_a_bootstrap_token_only(
        app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser, own_broker: BrokerHandle,
        gateway: tuple[int, str, str], tmp_path: Path) -> None:
    gateway_id, community, code = gateway
    admin = await make_user(Role.admin)
    engineer = await make_user(Role.engineer, community)
    resp = await client.post(f"/api/v1/gateways/{gateway_id}/bootstrap-tokens", headers=engineer.headers, json={})
    assert resp.status_code == 403  # admins provision gateways
    token = await _token(client, admin.headers, gateway_id)

    # the box knows its devices, not who it is nor how to reach the broker
    config = tmp_path / "agent.yaml"
    profile = write_profile(tmp_path, 0.2)
    unit = Unit(1, TEST_PUMP, dict(PUMP_VALUES))
    async with ProfileServer([unit]) as server, Collector(own_broker.admin_url, community, code) as cloud:
        config.write_text(yaml.safe_dump({
            "outbox": {"path": "outbox.db", "flush_interval_s": 0.05},
            "links": [{"type": "tcp", "host": "127.0.0.1", "port": server.port, "timeout_s": 0.5,
                       "devices": [{"id": "pump-1", "profile": str(profile), "unit": 1}]}],
            "rules": {"builtin": False, "state_path": "rules.json"}}))
        enrolment = await _enrol(app, token)
        assert (enrolment.community, enrolment.gateway) == (community, code)
        assert enrolment.mqtt_url == f"mqtt://{own_broker.host}:{own_broker.port}"  # no credentials in the URL
        password_file = write_enrolment(config, enrolment)
        written = yaml.safe_load(config.read_text())
        assert written["uplink"]["username"] == enrolment.username
        assert "password" not in written["uplink"]
        assert enrolment.password not in config.read_text()
        assert password_file.stat().st_mode & 0o777 == 0o600
        assert written["links"][0]["devices"][0]["id"] == "pump-1"  # the rest of the config is kept
        agent = AgentProcess.existing(tmp_path, config).start()
        try:
            await cloud.wait_for(lambda: any(s["state"] == "online" for s in cloud.status), timeout=30)
            await cloud.wait_for(lambda: len(cloud.items("telemetry")) >= 1, timeout=30)
        finally:
            agent.stop()

    # single use
    with pytest.raises(EnrollError, match="401"):
        await _enrol(app, token)
    with psycopg.connect(str(app.state.settings.database_url)) as conn:
        row = conn.execute("SELECT broker_username, credentials_issued_at IS NOT NULL FROM gateways WHERE id = %s",
                           (gateway_id,)).fetchone()
    assert row == (enrolment.username, True)


async def test_rotation_replaces_the_password_and_revocation_locks_out(
        app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser, own_broker: BrokerHandle,
        gateway: tuple[int, str, str]) -> None:
    gateway_id, _community, _code = gateway
    admin = await make_user(Role.admin)
    first = await _enrol(app, await _token(client, admin.headers, gateway_id))
    assert await _can_connect(own_broker, first)
    # rotation: a new token, spent by the agent; the old password stops working at the broker's reload
    second = await _enrol(app, await _token(client, admin.headers, gateway_id))
    assert second.username == first.username
    assert second.password != first.password
    await asyncio.sleep(0.3)  # SIGHUP is asynchronous
    assert await _can_connect(own_broker, second)
    assert not await _can_connect(own_broker, first)
    # revocation: the account is gone from the broker, and an unspent token is void
    spare = await _token(client, admin.headers, gateway_id)
    resp = await client.post(f"/api/v1/gateways/{gateway_id}/revoke", headers=admin.headers)
    assert resp.status_code == 200, resp.text
    assert resp.json()["username"] == first.username
    await asyncio.sleep(0.3)
    assert not await _can_connect(own_broker, second)
    with pytest.raises(EnrollError, match="401"):
        await _enrol(app, spare)
    # a fresh token brings the gateway back
    third = await _enrol(app, await _token(client, admin.headers, gateway_id))
    await asyncio.sleep(0.3)
    assert await _can_connect(own_broker, third)

    # every step is in the admin audit log, newest first, with who did it and no secret
    resp = await client.get("/api/v1/audit", headers=admin.headers)
    assert resp.status_code == 200
    log = [(e["action"], e["actor"]) for e in resp.json()]
    gw_actor = f"gateway:{first.username}"
    assert log[:3] == [("gateway.enrolled", gw_actor), ("gateway.token_issued", admin.user.username),
                       ("gateway.revoked", admin.user.username)]
    assert log.count(("gateway.enrolled", gw_actor)) == 3
    assert log.count(("gateway.token_issued", admin.user.username)) == 4
    assert all(second.password not in str(e) and "gjb_" not in str(e) for e in resp.json())


async def test_expired_and_unknown_tokens_are_refused_alike(
        app: FastAPI, client: httpx.AsyncClient, make_user: MakeUser, gateway: tuple[int, str, str]) -> None:
    gateway_id, _community, _code = gateway
    admin = await make_user(Role.admin)
    token = await _token(client, admin.headers, gateway_id)
    with psycopg.connect(str(app.state.settings.database_url)) as conn:
        conn.execute("UPDATE gateway_bootstrap_tokens SET expires_at = now() - interval '1 second'")
    for bad in (token, "gjb_" + "x" * 32):
        resp = await client.post("/api/v1/enroll", json={"token": bad})
        assert resp.status_code == 401
        assert resp.json()["error"]["code"] == "invalid_token"
    assert (await client.post("/api/v1/gateways/999999/bootstrap-tokens", headers=admin.headers,
                              json={})).status_code == 404
