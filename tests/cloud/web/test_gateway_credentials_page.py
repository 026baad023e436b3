"""The gateway page's credentials card (admins): a one-time enrolment token shown once, and
revocation against the real broker; engineers see no card and may not post to it."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
import psycopg
import pytest

from cloud.auth.roles import Role
from cloud.registry import store
from guanjia.core.settings import Settings
from tests.support.services import BrokerHandle
from tests.support.webapp import TEST_SECRET, MakeUser, browser_session


@pytest.fixture
def settings(web_db: str, tmp_path: Path, own_broker: BrokerHandle) -> Settings:
    pid_file = tmp_path / "broker.pid"
    pid_file.write_text(str(own_broker.server.pid()))
    directory = own_broker.server.directory
    return Settings(mode="test", database_url=web_db, secret_key=TEST_SECRET, run_dir=tmp_path / "run",
                    mqtt_url=own_broker.admin_url, broker_passwd_file=directory / "passwd",
                    broker_acl_file=directory / "acl", broker_pid_file=pid_file)


async def test_admin_issues_a_token_and_revokes(client: httpx.AsyncClient, make_user: MakeUser, web_db: str,
                                                own_broker: BrokerHandle) -> None:
    community = f"c{uuid.uuid4().hex[:6]}"
    with psycopg.connect(web_db) as conn:
        gateway_id = store.add_gateway(conn, community, "gw-1")
    admin = await browser_session(client, await make_user(Role.admin))
    engineer = await browser_session(client, await make_user(Role.engineer, community))

    page = await client.get(f"/gateways/{gateway_id}", headers=engineer)
    assert page.status_code == 200
    assert "gw-credentials" not in page.text
    assert (await client.post(f"/gateways/{gateway_id}/bootstrap-token", headers=engineer)).status_code == 403

    page = await client.post(f"/gateways/{gateway_id}/bootstrap-token", headers=admin)
    assert page.status_code == 200
    token = re.search(r"<code>(gjb_[A-Za-z0-9_-]+)</code>", page.text)
    assert token, page.text[-2000:]
    assert "一次性接入令牌" in page.text
    enrolled = await client.post("/api/v1/enroll", json={"token": token.group(1)})
    assert enrolled.status_code == 200, enrolled.text
    assert "gw-credentials" in (await client.get(f"/gateways/{gateway_id}", headers=admin)).text
    assert "gjb_" not in (await client.get(f"/gateways/{gateway_id}", headers=admin)).text  # shown once

    resp = await client.post(f"/gateways/{gateway_id}/revoke", headers=admin, follow_redirects=False)
    assert resp.status_code == 303
    page = await client.get(resp.headers["location"], headers=admin)
    assert "凭据已吊销" in page.text
    assert "已吊销于" in page.text
    username = enrolled.json()["username"]
    assert f"user {username}" not in (own_broker.server.directory / "acl").read_text()
    audit = await client.get("/admin/audit", headers=admin)
    assert audit.status_code == 200
    assert all(word in audit.text for word in ("签发接入令牌", "网关接入", "吊销凭据"))
    assert (await client.get("/admin/audit", headers=engineer)).status_code == 403
