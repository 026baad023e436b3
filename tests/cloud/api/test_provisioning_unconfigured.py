"""Without the broker's files configured, enrolment and revocation say so (409), never a 5xx."""

from __future__ import annotations

import httpx
import psycopg

from cloud.auth.roles import Role
from cloud.registry import store
from tests.support.webapp import MakeUser


async def test_enrolment_without_broker_files_is_a_409(client: httpx.AsyncClient, make_user: MakeUser,
                                                       web_db: str) -> None:
    with psycopg.connect(web_db) as conn:
        gateway_id = store.add_gateway(conn, "cx", "gw-1")
    admin = await make_user(Role.admin)
    token = (await client.post(f"/api/v1/gateways/{gateway_id}/bootstrap-tokens", headers=admin.headers,
                               json={"ttl_s": 3600})).json()["token"]
    resp = await client.post("/api/v1/enroll", json={"token": token})
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "broker_not_configured"
    resp = await client.post(f"/api/v1/gateways/{gateway_id}/revoke", headers=admin.headers)
    assert resp.status_code == 409
    with psycopg.connect(web_db) as conn:  # nothing spent, nothing revoked
        assert conn.execute("SELECT count(*) FROM gateway_bootstrap_tokens WHERE used_at IS NULL").fetchone() == (1,)
        assert conn.execute("SELECT credentials_revoked_at FROM gateways").fetchone() == (None,)
