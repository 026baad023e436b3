"""Communities and buildings from the API: upsert by code, validated, audited, admins only."""

from __future__ import annotations

import httpx

from cloud.auth.roles import Role
from tests.support.webapp import MakeUser


async def test_estate_upserts_validation_and_audit(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user(Role.admin)
    h = admin.headers
    resp = await client.post("/api/v1/admin/communities", headers=h,
                             json={"code": "lvyuan", "name": "绿苑小区", "timezone": "Asia/Shanghai"})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"code": "lvyuan", "name": "绿苑小区", "timezone": "Asia/Shanghai", "buildings": 0,
                           "gateways": 0, "devices": 0}
    bad = await client.post("/api/v1/admin/communities", headers=h, json={"code": "x", "timezone": "Mars/Olympus"})
    assert bad.status_code == 422
    assert "IANA" in str(bad.json()["error"]["detail"])
    assert (await client.post("/api/v1/admin/communities", headers=h, json={"code": "a/b"})).status_code == 422

    b = {"community": "lvyuan", "code": "b3", "name": "3号楼", "floors": 18, "basement_floors": 2}
    first = await client.post("/api/v1/admin/buildings", headers=h, json=b)
    assert first.status_code == 200, first.text
    assert first.json()["created"] is True
    again = await client.post("/api/v1/admin/buildings", headers=h, json={**b, "floors": 19})
    assert again.json()["created"] is False
    assert again.json()["floors"] == 19
    assert (await client.post("/api/v1/admin/buildings", headers=h,
                              json={**b, "community": "nowhere"})).status_code == 404
    assert (await client.post("/api/v1/admin/buildings", headers=h, json={**b, "floors": 0})).status_code == 422
    listed = await client.get("/api/v1/admin/buildings?community=lvyuan", headers=h)
    assert [(x["code"], x["floors"]) for x in listed.json()] == [("b3", 19)]
    communities = {c["code"]: c for c in (await client.get("/api/v1/admin/communities", headers=h)).json()}
    assert communities["lvyuan"]["buildings"] == 1

    actions = [a["action"] for a in (await client.get("/api/v1/audit", headers=h)).json()]
    assert actions == ["building.updated", "building.created", "community.created"]

    engineer = await make_user(Role.engineer, "lvyuan")
    assert (await client.post("/api/v1/admin/buildings", headers=engineer.headers, json=b)).status_code == 403
    assert (await client.get("/api/v1/admin/communities", headers=engineer.headers)).status_code == 403
