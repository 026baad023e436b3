"""A community's day calendar through the real app: statutory days from the library, the
community's own days set by an admin (audited), read by its staff, hidden from other tenants."""

from __future__ import annotations

from typing import Any

import httpx

from cloud.auth.roles import Role
from tests.support.webapp import MakeUser

URL = "/api/v1/analytics/communities/lvyuan/calendar"


async def _estate(client: httpx.AsyncClient, h: dict[str, str], *codes: str) -> None:
    for code in codes:
        resp = await client.post("/api/v1/admin/communities", headers=h, json={"code": code, "name": code})
        assert resp.status_code == 200, resp.text


async def test_admin_sets_a_closure_day_staff_read_it_other_tenants_do_not(client: httpx.AsyncClient,
                                                                             make_user: MakeUser) -> None:
    admin = (await make_user(Role.admin)).headers
    await _estate(client, admin, "lvyuan", "qingyuan")

    year = await client.get(f"{URL}?year=2026", headers=admin)
    assert year.status_code == 200, year.text
    body = year.json()
    assert body["zone"] == "Asia/Shanghai"
    days = {d["day"]: d for d in body["days"]}
    assert all(days[f"2026-02-{d}"]["type"] == "holiday" for d in range(15, 24))
    assert days["2026-02-14"]["type"] == "makeup"
    assert (days["2026-02-17"]["name_zh"], days["2026-02-17"]["source"]) == ("春节", "statutory")

    closed = await client.put(f"{URL}/2026-03-10", headers=admin, json={"kind": "holiday", "note": "小区停水检修"})
    assert closed.status_code == 200, closed.text
    back = await client.put(f"{URL}/2026-02-17", headers=admin, json={"kind": "workday"})
    days = {d["day"]: d for d in back.json()["days"]}
    assert (days["2026-03-10"]["type"], days["2026-03-10"]["source"], days["2026-03-10"]["note"]) == (
        "holiday", "community", "小区停水检修")
    assert (days["2026-02-17"]["type"], days["2026-02-17"]["source"]) == ("ordinary", "community")

    removed = await client.delete(f"{URL}/2026-02-17", headers=admin)
    assert {d["day"]: d["type"] for d in removed.json()["days"]}["2026-02-17"] == "holiday"
    assert (await client.delete(f"{URL}/2026-02-17", headers=admin)).status_code == 200  # idempotent, not audited
    actions = [a["action"] for a in (await client.get("/api/v1/audit?community=lvyuan", headers=admin)).json()]
    assert actions[:3] == ["calendar.day_removed", "calendar.day_set", "calendar.day_set"]

    # the community's engineer reads and may not write; another community's sees nothing
    mine = (await make_user(Role.engineer, "lvyuan")).headers
    assert "2026-03-10" in {d["day"] for d in (await client.get(f"{URL}?year=2026", headers=mine)).json()["days"]}
    assert (await client.put(f"{URL}/2026-03-11", headers=mine, json={"kind": "holiday"})).status_code == 403
    other = (await make_user(Role.engineer, "qingyuan")).headers
    assert (await client.get(URL, headers=other)).status_code == 404
    theirs = await client.get("/api/v1/analytics/communities/qingyuan/calendar?year=2026", headers=other)
    assert "2026-03-10" not in {d["day"] for d in theirs.json()["days"]}
    resident = (await make_user(Role.resident, "lvyuan")).headers
    assert (await client.get(URL, headers=resident)).status_code == 403


async def test_odd_calendar_input_is_4xx_in_the_json_error_shape(client: httpx.AsyncClient,
                                                                   make_user: MakeUser) -> None:
    admin = (await make_user(Role.admin)).headers
    await _estate(client, admin, "lvyuan")
    bodies: list[Any] = [{"kind": "party"}, {"kind": "holiday", "note": "x" * 201}, {}, [], {"kind": "holiday", "x": 1}]
    for body in bodies:
        resp = await client.put(f"{URL}/2026-03-10", headers=admin, json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert set(resp.json()["error"]) == {"code", "message", "detail"}
    for day in ("2026-02-30", "yesterday", "1899-01-01", "99999-01-01"):
        resp = await client.put(f"{URL}/{day}", headers=admin, json={"kind": "holiday"})
        assert resp.status_code == 422, (day, resp.text)
    assert (await client.get(f"{URL}?year=1066", headers=admin)).status_code == 422
    assert (await client.get("/api/v1/analytics/communities/nowhere/calendar", headers=admin)).status_code == 404
    assert (await client.put("/api/v1/analytics/communities/nowhere/calendar/2026-03-10", headers=admin,
                             json={"kind": "holiday"})).status_code == 404
