"""A butler's service profile (hire date, certificates) from the admin API: the community's engineer
(manager) and admins set it, other tenants see nothing; every change is audited; per-field errors in
the documented JSON shape; a certificate counts toward the stars through the last day printed on it,
in the community's time zone on the injected clock; the butler's own page shows the same profile."""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.ops.model.policy import StarRule
from cloud.ops.workorders import profile
from guanjia.core.clock import ManualClock
from tests.support.webapp import MakeUser, browser_session

B = "/api/v1/admin/butlers"
# 07:30 on 30 June in Shanghai: the 电梯安全管理员 certificate's last valid day
LAST_DAY_MORNING = dt.datetime(2026, 6, 29, 23, 30, tzinfo=dt.UTC)
NEXT_DAY_0030 = dt.datetime(2026, 6, 30, 16, 30, tzinfo=dt.UTC)
CERTS: list[dict[str, Any]] = [
    {"name": "电梯安全管理员", "number": "TS-A1-3101", "issuer": "上海市市场监督管理局", "valid_until": "2026-06-30"},
    {"name": "特种设备作业人员证", "number": "T-3101-0042", "issuer": "上海市市场监督管理局",
     "valid_until": "2028-01-01"},
    {"name": "低压电工作业证", "number": "D-77", "issuer": "应急管理局", "valid_until": "2026-06-29"},
]


@pytest.fixture
def clock(app: FastAPI) -> ManualClock:
    pinned = ManualClock(LAST_DAY_MORNING)
    app.state.clock = pinned  # before any login: tokens are issued on the same clock
    return pinned


async def _butler(client: httpx.AsyncClient, h: dict[str, str], community: str, name: str) -> int:
    assert (await client.post("/api/v1/admin/communities", headers=h,
                              json={"code": community, "name": community})).status_code == 200
    created = await client.post(B, headers=h, json={"community": community, "name": name, "skills": ["elevator"]})
    assert created.status_code == 201, created.text
    return int(created.json()["id"])


async def test_engineer_sets_profile_certificates_expire_on_the_community_date(
        client: httpx.AsyncClient, make_user: MakeUser, clock: ManualClock,
        pool: AsyncConnectionPool[Any]) -> None:
    admin = await make_user(Role.admin)
    li = await _butler(client, admin.headers, "lvyuan", "李管家")
    await _butler(client, admin.headers, "qingyuan", "Q管家")
    engineer = await make_user(Role.engineer, "lvyuan")

    empty = (await client.get(f"{B}/{li}/profile", headers=engineer.headers)).json()
    assert (empty["hired_on"], empty["years_of_service"], empty["certifications"]) == (None, 0.0, [])
    saved = await client.put(f"{B}/{li}/profile", headers=engineer.headers,
                             json={"hired_on": "2020-06-30", "certifications": CERTS})
    assert saved.status_code == 200, saved.text
    shown_first = saved.json()
    assert shown_first["today"] == "2026-06-30"  # Shanghai's date, though UTC is still on the 29th
    assert shown_first["years_of_service"] == 6.0
    assert [(c["name"], c["current"]) for c in shown_first["certifications"]] == [
        ("电梯安全管理员", True), ("特种设备作业人员证", True), ("低压电工作业证", False)]
    assert shown_first["current_certifications"] == 2
    assert (await client.get(f"{B}/{li}/profile", headers=admin.headers)).json() == shown_first  # one read model

    async with pool.connection() as conn:
        cur = await conn.execute("SELECT score FROM butler_performance WHERE butler_id = %s", (li,))
        both = (await cur.fetchone() or (0.0,))[0]
        clock.set(NEXT_DAY_0030 - dt.timedelta(minutes=31))  # 23:59 on 30 June there: still valid
        assert await profile.refresh_expired(conn, clock.now(), StarRule()) == 0
        clock.set(NEXT_DAY_0030)  # 00:30 on 1 July in Shanghai: the lift certificate has run out
        assert await profile.refresh_expired(conn, clock.now(), StarRule()) == 1  # the ticker's step
        assert await profile.refresh_expired(conn, clock.now(), StarRule()) == 0  # once
        cur = await conn.execute("SELECT score FROM butler_performance WHERE butler_id = %s", (li,))
        later = (await cur.fetchone() or (0.0,))[0]
        clock.set(NEXT_DAY_0030 + dt.timedelta(days=1))  # a day on: years of service moved, so once more
        assert await profile.refresh_expired(conn, clock.now(), StarRule()) == 1
        assert await profile.refresh_expired(conn, clock.now(), StarRule()) == 0
        clock.set(NEXT_DAY_0030)
    assert later == pytest.approx(both - 0.05 / 2, abs=1e-4)  # one of the two that earn full marks
    shown = (await client.get(f"{B}/{li}/profile", headers=engineer.headers)).json()
    assert shown["today"] == "2026-07-01"
    assert [c["current"] for c in shown["certifications"]] == [False, True, False]

    audit = (await client.get("/api/v1/audit?community=lvyuan", headers=admin.headers)).json()
    entry = audit[0]
    assert (entry["action"], entry["actor"]) == ("butler.profile_updated", engineer.user.username)
    assert entry["detail"]["hired_on"] == [None, "2020-06-30"]
    assert entry["detail"]["certifications"][1][0] == "电梯安全管理员 TS-A1-3101 (上海市市场监督管理局, 2026-06-30)"

    # the butler's own page: years of service and certificates beside the star rule, zh and en
    async with pool.connection() as conn:
        user = await make_user(Role.butler, "lvyuan")
        await conn.execute("UPDATE butlers SET user_id = %s WHERE id = %s", (user.user.id, li))
    cookies = await browser_session(client, user)
    page = (await client.get("/inbox", headers=cookies)).text
    assert "服务 6.0 年" in page
    assert "特种设备作业人员证 · T-3101-0042" in page
    assert "1 个有效证书计入星级" in page
    assert page.count("已过期，不计入星级") == 2
    english = (await client.get("/inbox?lang=en", headers=cookies)).text
    assert "6.0 years of service" in english
    assert "1 valid certificates count toward the stars" in english

    # tenancy: another community's engineer sees nothing; butlers and residents are not managers
    other = await make_user(Role.engineer, "qingyuan")
    assert (await client.put(f"{B}/{li}/profile", headers=other.headers, json={})).status_code == 404
    assert (await client.get(f"{B}/{li}/profile", headers=other.headers)).status_code == 404
    assert (await client.put(f"{B}/{li}/profile", headers=user.headers, json={})).status_code == 403
    resident = await make_user(Role.resident, "lvyuan")
    assert (await client.put(f"{B}/{li}/profile", headers=resident.headers, json={})).status_code == 403
    assert (await client.put(f"{B}/999999/profile", headers=admin.headers, json={})).status_code == 404


async def test_profile_validation_names_the_field(client: httpx.AsyncClient, make_user: MakeUser,
                                                  clock: ManualClock) -> None:
    admin = await make_user(Role.admin)
    li = await _butler(client, admin.headers, "lvyuan", "李管家")
    url = f"{B}/{li}/profile"
    cases: list[tuple[Any, list[Any]]] = [
        ({"hired_on": "2026-07-01"}, ["body", "hired_on"]),  # tomorrow in Shanghai
        ({"hired_on": "1900-01-01"}, ["body", "hired_on"]),
        ({"hired_on": "30/06/2020"}, ["body", "hired_on"]),
        ({"certifications": [{"name": " "}]}, ["body", "certifications", 0, "name"]),
        ({"certifications": [{"name": "电工证", "valid_until": "soon"}]},
         ["body", "certifications", 0, "valid_until"]),
        ({"certifications": [{"name": "电工证", "colour": "red"}]}, ["body", "certifications", 0, "colour"]),
        ({"certifications": [{"name": f"证{i}"} for i in range(21)]}, ["body", "certifications"]),
        ({"certifications": [{"name": "电工证", "number": "1"}, {"name": "电工证", "number": "1"}]}, ["body"]),
        ({"certifications": [{"name": "x" * 101}]}, ["body", "certifications", 0, "name"]),
        ([], ["body"]),
    ]
    for body, loc in cases:
        resp = await client.put(url, headers=admin.headers, json=body)
        assert resp.status_code == 422, (body, resp.text)
        error = resp.json()["error"]
        assert set(error) == {"code", "message", "detail"}
        assert error["detail"][0]["loc"][:len(loc)] == loc, (body, error)
    assert (await client.put(f"{B}/x/profile", headers=admin.headers, json={})).status_code == 422
    assert (await client.get(f"{B}/{2**64}/profile", headers=admin.headers)).status_code in (404, 422)
    cleared = await client.put(url, headers=admin.headers, json={"hired_on": None, "certifications": []})
    assert cleared.status_code == 200
