"""Butlers, rosters, contractors and a community's SLA/notification policy from the admin API:
validated with per-field errors, audited in the same transaction, admins change, the community's
engineers read, other tenants see nothing — and a changed SLA sets the deadlines of new orders."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.ops.model.actors import Actor
from cloud.ops.model.policy import default_policy
from cloud.ops.notify.outbox import notify_butler
from cloud.ops.workorders import repo
from tests.support.webapp import MakeUser

B = "/api/v1/admin/butlers"


async def _estate(client: httpx.AsyncClient, h: dict[str, str], *codes: str) -> None:
    for code in codes:
        resp = await client.post("/api/v1/admin/communities", headers=h, json={"code": code, "name": code})
        assert resp.status_code == 200, resp.text


async def test_butler_skills_roster_validation_audit(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user(Role.admin)
    h = admin.headers
    await _estate(client, h, "lvyuan", "qingyuan")
    lead = await client.post(B, headers=h, json={"community": "lvyuan", "name": "赵组长", "skills": ["general"],
                                                 "role": "team_lead"})
    assert lead.status_code == 201, lead.text
    body = {"community": "lvyuan", "name": "李管家", "phone": "13800001111", "skills": ["water", "elevator"],
            "star_level": 4, "manager_id": lead.json()["id"],
            "shifts": [{"weekday": 0, "starts": "08:00", "ends": "20:00"}]}
    created = await client.post(B, headers=h, json=body)
    assert created.status_code == 201, created.text
    li = created.json()
    assert li["skills"] == ["elevator", "water"]
    assert li["shifts"] == [{"weekday": 0, "starts": "08:00:00", "ends": "20:00:00"}]
    assert (li["role"], li["kind"], li["star_level"]) == ("butler", "full_time", 4)

    # schema errors and domain errors alike: 422 with the field in loc
    bad = await client.post(B, headers=h, json={**body, "skills": ["plumbing"], "star_level": 9})
    assert bad.status_code == 422
    fields = {tuple(d["loc"][1:2]) for d in bad.json()["error"]["detail"]}
    assert fields == {("skills",), ("star_level",)}
    wrong_chain = await client.post(B, headers=h, json={**body, "manager_id": 999_999})
    assert wrong_chain.status_code == 422
    assert wrong_chain.json()["error"]["detail"][0]["loc"] == ["body", "manager_id"]
    nowhere = await client.post(B, headers=h, json={**body, "buildings": ["b9"]})
    assert nowhere.json()["error"]["detail"][0]["loc"] == ["body", "buildings"]
    nobody = await client.post(B, headers=h, json={**body, "username": "ghost"})
    assert nobody.json()["error"]["detail"][0]["loc"] == ["body", "username"]
    zone = await client.patch(f"{B}/{li['id']}", headers=h, json={"timezone": "Mars/Olympus"})
    assert zone.status_code == 422

    patched = await client.patch(f"{B}/{li['id']}", headers=h, json={"skills": ["electrical"], "active": False})
    assert patched.status_code == 200, patched.text
    assert (patched.json()["skills"], patched.json()["active"], patched.json()["star_level"]) == (["electrical"],
                                                                                                 False, 4)
    roster = await client.put(f"{B}/{li['id']}/roster", headers=h,
                              json=[{"weekday": 5, "starts": "22:00", "ends": "06:00"},
                                    {"weekday": 6, "starts": "22:00", "ends": "06:00"}])
    assert roster.status_code == 200, roster.text
    assert [s["weekday"] for s in roster.json()["shifts"]] == [5, 6]
    assert (await client.put(f"{B}/{li['id']}/roster", headers=h,
                             json=[{"weekday": 7, "starts": "08:00", "ends": "09:00"}])).status_code == 422
    assert (await client.put(f"{B}/999999/roster", headers=h, json=[])).status_code == 404

    company = await client.post("/api/v1/admin/contractors", headers=h,
                                json={"name": "迅达维保", "skills": ["elevator"]})
    assert company.status_code == 201, company.text
    staff = await client.post(B, headers=h, json={"community": "lvyuan", "name": "迅达张工", "skills": ["elevator"],
                                                  "contractor_id": company.json()["id"]})
    assert staff.json()["contractor"] == "迅达维保"
    assert [c["staff"] for c in (await client.get("/api/v1/admin/contractors", headers=h)).json()] == [1]

    listed = (await client.get(f"{B}?community=lvyuan", headers=h)).json()
    assert [b["name"] for b in listed] == ["赵组长", "迅达张工", "李管家"]  # active first, leads first
    actions = [a["action"] for a in (await client.get("/api/v1/audit", headers=h)).json()]
    assert actions[:6] == ["butler.created", "contractor.created", "roster.updated", "butler.updated",
                           "butler.created", "butler.created"]

    # the community's engineer reads, never writes; another community's engineer sees nothing
    mine = await make_user(Role.engineer, "lvyuan")
    other = await make_user(Role.engineer, "qingyuan")
    assert len((await client.get(f"{B}?community=lvyuan", headers=mine.headers)).json()) == 3
    assert (await client.post(B, headers=mine.headers, json=body)).status_code == 403
    assert (await client.patch(f"{B}/{li['id']}", headers=mine.headers, json={})).status_code == 403
    assert (await client.get(f"{B}?community=lvyuan", headers=other.headers)).status_code == 404
    assert (await client.get(f"{B}?community=qingyuan", headers=other.headers)).json() == []
    assert (await client.get("/api/v1/admin/communities/lvyuan/policy", headers=other.headers)).status_code == 404
    butler = await make_user(Role.butler, "lvyuan")
    assert (await client.get(f"{B}?community=lvyuan", headers=butler.headers)).status_code == 403


async def test_odd_input_is_4xx_never_500(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    h = (await make_user(Role.admin)).headers
    await _estate(client, h, "lvyuan")
    ok: dict[str, Any] = {"community": "lvyuan", "name": "李管家", "skills": ["water"]}
    bodies: list[Any] = [{**ok, "name": "李\x00管家"}, {**ok, "manager_id": 2**63}, {**ok, "shifts": [{"weekday": 1}]},
                         {**ok, "buildings": "b1"}, {**ok, "messengers": ["wxwork://abcdefgh12"]}, [],
                         {**ok, "extra": 1}]
    for body in bodies:
        resp = await client.post(B, headers=h, json=body)
        assert resp.status_code == 422, (body, resp.text)
        assert set(resp.json()["error"]) == {"code", "message", "detail"}
    for path in (f"{B}/{2**64}", f"{B}/-1", f"{B}/x"):
        assert (await client.patch(path, headers=h, json={})).status_code in (404, 422)
    policy = "/api/v1/admin/communities/lvyuan/policy"
    wrong: list[Any] = [{"sla": {"P9": {}}}, {"sla": {"P1": {"respond": -5, "on_site": 1, "resolve": 2,
                                                             "escalate_every": 1}}},
                        {"notify": {"reminder_every": "1s"}}, {"sla": []}]
    for value in wrong:
        assert (await client.put(policy, headers=h, json=value)).status_code == 422, value
    assert (await client.get("/api/v1/admin/communities/%E2%80%AE/policy", headers=h)).status_code == 404


async def test_sla_policy_sets_deadlines_of_new_orders(client: httpx.AsyncClient, make_user: MakeUser,
                                                       pool: AsyncConnectionPool[Any]) -> None:
    admin = await make_user(Role.admin)
    h = admin.headers
    await _estate(client, h, "lvyuan", "qingyuan")
    url = "/api/v1/admin/communities/lvyuan/policy"
    shown = (await client.get(url, headers=h)).json()
    assert shown["sla"]["P2"] == {"respond": "2h", "on_site": "1d", "resolve": "3d", "escalate_every": "1h",
                                  "label": "repair", "overridden": False}
    sla = {p: {k: c[k] for k in ("respond", "on_site", "resolve", "escalate_every")} for p, c in shown["sla"].items()}
    sla["P2"] = {"respond": "30m", "on_site": "4h", "resolve": "1d", "escalate_every": "15m"}
    saved = await client.put(url, headers=h, json={"sla": sla, "notify": {"email": False, "reminder_every": "45m"}})
    assert saved.status_code == 200, saved.text
    assert saved.json()["sla"]["P2"]["overridden"] is True
    assert saved.json()["sla"]["P1"]["overridden"] is False  # equal to the default: not stored
    assert saved.json()["notify"] == {"email": False, "messengers": True, "sms_escalation": True,
                                      "reminder_every": "45m", "reminder_overridden": True}
    bad = await client.put(url, headers=h, json={"sla": {"P2": {**sla["P2"], "respond": "soon"}}})
    assert bad.status_code == 422
    assert bad.json()["error"]["detail"][0]["loc"][:4] == ["body", "sla", "P2", "respond"]
    assert (await client.put(url, headers=h, json={"sla": {"P2": {**sla["P2"], "resolve": "1m"}}})).status_code == 422
    assert (await client.put("/api/v1/admin/communities/nowhere/policy", headers=h, json={})).status_code == 404

    now = dt.datetime(2026, 12, 7, 2, 0, tzinfo=dt.UTC)
    async with pool.connection() as conn:
        cur = await conn.execute("INSERT INTO butlers (name, community, skills, email) VALUES ('李管家', 'lvyuan',"
                                 " '{general}', 'li@example.com') RETURNING id")
        butler_id = (await cur.fetchone() or (0,))[0]
        orders = {}
        for community in ("lvyuan", "qingyuan"):
            wo = await repo.open_order(conn, default_policy(), repo.NewOrder(
                community=community, title="漏水", origin="staff", priority="P2"), now, Actor.system("test"))
            assert wo is not None
            orders[community] = wo
        assert orders["lvyuan"]["respond_due"] - now == dt.timedelta(minutes=30)
        assert orders["lvyuan"]["resolve_due"] - now == dt.timedelta(days=1)
        assert orders["qingyuan"]["respond_due"] - now == dt.timedelta(hours=2)  # the other keeps the default
        assert orders["lvyuan"]["assignee_id"] == butler_id
        # the notification policy: email switched off for lvyuan, the inbox still gets it
        cur = await conn.execute("SELECT channel FROM notifications WHERE butler_id = %s ORDER BY id", (butler_id,))
        assert {r[0] for r in await cur.fetchall()} == {"inbox"}
        await conn.execute("UPDATE butlers SET community = 'qingyuan' WHERE id = %s", (butler_id,))
        await notify_butler(conn, butler_id, orders["qingyuan"], "work_order.reminder", now, reveal_pii=True,
                            dedup="t1")
        cur = await conn.execute("SELECT channel FROM notifications WHERE butler_id = %s AND dedup_key LIKE 't1%%'",
                                 (butler_id,))
        assert sorted(r[0] for r in await cur.fetchall()) == ["email", "inbox"]

    reset = await client.delete(url, headers=h)
    assert reset.json()["sla"]["P2"]["respond"] == "2h"
    actions = [a["action"] for a in (await client.get("/api/v1/audit?community=lvyuan", headers=h)).json()]
    assert actions[:2] == ["policy.reset", "policy.updated"]
    engineer = await make_user(Role.engineer, "lvyuan")
    assert (await client.get(url, headers=engineer.headers)).status_code == 200
    assert (await client.put(url, headers=engineer.headers, json={})).status_code == 403
