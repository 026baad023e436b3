"""Complaints over the REST API and on the manager page, through the product's own app: a
resident files one, staff move it through its workflow (illegal → 409 with what is allowed),
another community's is a 404, the resident sees their own, the manager page shows the cycle time."""

from __future__ import annotations

from typing import Any

import httpx

from cloud.auth.roles import Role
from tests.support.webapp import MakeUser


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_resident_files_staff_runs_it_through(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    resident = await make_user(Role.resident, "cA")
    engineer = await make_user(Role.engineer, "cA")
    outsider = await make_user(Role.engineer, "cB")
    resp = await client.post("/api/v1/complaints", headers=bearer(resident.token),
                             json={"community": "cA", "grade": "serious", "text": "夜间施工噪音"})
    assert resp.status_code == 201, resp.text
    complaint: dict[str, Any] = resp.json()
    assert (complaint["state"], complaint["reporter_user_id"]) == ("received", resident.user.id)
    cid = complaint["id"]
    assert (await client.post("/api/v1/complaints", headers=bearer(resident.token),
                              json={"community": "cB", "text": "x"})).status_code == 404
    bad = await client.post("/api/v1/complaints", headers=bearer(resident.token),
                            json={"community": "cA", "grade": "huge", "text": "x"})
    assert bad.status_code == 422
    assert "serious, general, minor" in bad.text
    illegal = await client.post(f"/api/v1/complaints/{cid}/transitions", headers=bearer(engineer.token),
                                json={"action": "close"})
    assert illegal.status_code == 409
    assert illegal.json()["error"]["detail"]["allowed"] == ["investigate", "handle"]
    for action, note in (("investigate", ""), ("handle", "与施工方沟通"), ("feedback", "已告知业主"), ("close", "")):
        resp = await client.post(f"/api/v1/complaints/{cid}/transitions", headers=bearer(engineer.token),
                                 json={"action": action, "note": note})
        assert resp.status_code == 200, resp.text
    detail = (await client.get(f"/api/v1/complaints/{cid}", headers=bearer(engineer.token))).json()
    assert detail["state"] == "closed"
    assert [t["action"] for t in detail["trail"]] == ["filed", "investigate", "handle", "feedback", "close"]
    assert detail["trail"][-1]["actor_name"] == engineer.user.name
    assert (await client.get(f"/api/v1/complaints/{cid}", headers=bearer(outsider.token))).status_code == 404
    mine = (await client.get("/api/v1/complaints/mine", headers=bearer(resident.token))).json()
    assert [c["id"] for c in mine] == [cid]
    listed = (await client.get("/api/v1/complaints?community=cA", headers=bearer(engineer.token))).json()
    assert [c["id"] for c in listed] == [cid]
    assert (await client.get("/api/v1/complaints?community=cA", headers=bearer(resident.token))).status_code == 403
