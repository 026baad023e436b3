"""The analytics API on the real app: health record, detections, models — tenant-scoped."""

from __future__ import annotations

from typing import Any

import httpx
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool

from cloud.analytics import modelstore
from cloud.auth.roles import Role
from tests.cloud.analytics.conftest import add_device
from tests.cloud.web.conftest import (  # noqa: F401  (fixtures of the real app)
    MakeUser,
    app,
    client,
    make_user,
    pool,
    settings,
    web_db,
)


async def test_health_detections_and_models_are_served_per_tenant(
        pool: AsyncConnectionPool[Any], client: httpx.AsyncClient, make_user: MakeUser) -> None:  # noqa: F811
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
            "now(), 1.4, %s)", (mine, model.id, "pump b1-pump-1 draws 18% more current than usual for this pressure"))
        await conn.commit()
    engineer = await make_user(Role.engineer, "c-api")

    resp = await client.get(f"/api/v1/analytics/devices/{mine}/health", headers=engineer.headers)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert body["score"] == 62
    assert body["figures"]["starts"] == 120
    assert body["deductions"][0]["points"] == 20

    resp = await client.get(f"/api/v1/analytics/devices/{mine}/detections?open_only=true", headers=engineer.headers)
    assert resp.status_code == 200
    [detection] = resp.json()
    assert detection["fault"] == "bearing_wear"
    assert detection["model_version"] == 1
    assert "18% more current" in detection["message"]

    resp = await client.get("/api/v1/analytics/models", headers=engineer.headers)
    assert resp.json()[0]["limits"] == {"current_excess": 0.06}

    # another community's device does not exist for this engineer; no token, no data
    resp = await client.get(f"/api/v1/analytics/devices/{other}/health", headers=engineer.headers)
    assert resp.status_code == 404
    resp = await client.get(f"/api/v1/analytics/devices/{mine}/health")
    assert resp.status_code == 401
