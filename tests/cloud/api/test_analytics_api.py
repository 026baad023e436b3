"""The analytics API on the real app: health record, detections, models — tenant-scoped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from cloud.analytics import modelstore
from cloud.auth.roles import Role
from cloud.auth.users import create_user
from cloud.db.pool import open_pool
from guanjia.core.settings import Settings
from tests.support.analytics import add_device

SECRET = "test-secret-key-for-the-analytics-tests-0123456789"


@pytest.fixture
async def pool(analytics_db: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with open_pool(analytics_db, min_size=1, max_size=4) as p:
        yield p


@pytest.fixture
async def client(pool: AsyncConnectionPool[Any], analytics_db: str,
                 tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The product's own app (every router, the real auth) in-process over httpx."""
    from cloud.app import create_app

    settings = Settings(mode="test", database_url=analytics_db, secret_key=SECRET, run_dir=tmp_path / "run")
    transport = httpx.ASGITransport(app=create_app(settings, pool), client=("10.9.8.7", 4567))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


async def login(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient, role: Role,
                community: str) -> dict[str, str]:
    async with pool.connection() as conn:
        await create_user(conn, f"{role.value}-a", "pw-analytics-secret", role, (community,))
    form = {"username": f"{role.value}-a", "password": "pw-analytics-secret"}
    resp = await client.post("/api/v1/auth/token", data=form)
    assert resp.status_code == 200, resp.text
    return {"Authorization": f"Bearer {resp.json()['access_token']}"}


async def test_health_detections_and_models_are_served_per_tenant(
        pool: AsyncConnectionPool[Any], client: httpx.AsyncClient) -> None:
    async with pool.connection() as conn:
        mine = await add_device(conn, "c-api", "b1", "b1-pump-1", "pump", "vfd-pump")
        other = await add_device(conn, "c-else", "b1", "b1-pump-1", "pump", "vfd-pump")
        model = await modelstore.save_model(conn, detector="pump", kind="pump",
                                            params={"limits": {"current_excess": 0.06}}, metrics={"devices": 1})
        await conn.execute(
            "INSERT INTO device_health (device_id, kind, window_start, window_end, record, score, deductions) "
            "VALUES (%s, 'pump', now() - interval '30 days', now(), %s, 62, %s)",
            (mine, Jsonb({"starts": 120, "duty_cycle": 0.4}),
             Jsonb([{"points": 20, "reason": "1 open anomaly detection(s)"}])))
        await conn.execute(
            "INSERT INTO analytics_detections (device_id, model_id, detector, fault, onset_at, detected_at, "
            "last_seen_at, score, message) VALUES (%s, %s, 'pump.current_excess', 'bearing_wear', now(), now(), "
            "now(), 1.4, %s)", (mine, model.id, "水泵 b1-pump-1 电流比同压力下的常态高 18% / "
                                  "pump b1-pump-1 draws 18% more current than usual for this pressure"))
        await conn.commit()
    headers = await login(pool, client, Role.engineer, "c-api")

    resp = await client.get(f"/api/v1/analytics/devices/{mine}/health", headers=headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["score"] == 62
    assert body["figures"]["starts"] == 120
    assert body["deductions"][0]["points"] == 20

    resp = await client.get(f"/api/v1/analytics/devices/{mine}/detections?open_only=true", headers=headers)
    assert resp.status_code == 200
    [detection] = resp.json()
    assert detection["fault"] == "bearing_wear"
    assert detection["model_version"] == 1
    assert detection["message"] == "pump b1-pump-1 draws 18% more current than usual for this pressure"
    assert detection["message_zh"] == "水泵 b1-pump-1 电流比同压力下的常态高 18%"  # each language on its own

    resp = await client.get("/api/v1/analytics/models", headers=headers)
    assert resp.json()[0]["limits"] == {"current_excess": 0.06}

    # another community's device does not exist for this engineer; no token, no data
    resp = await client.get(f"/api/v1/analytics/devices/{other}/health", headers=headers)
    assert resp.status_code == 404
    resp = await client.get(f"/api/v1/analytics/devices/{mine}/health")
    assert resp.status_code == 401
