"""The auth API against a real PostgreSQL: login, tokens, revocation, roles, rate limit, CSRF."""

from __future__ import annotations

from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from cloud.auth.roles import Role
from cloud.auth.seed import seed_demo_users
from cloud.auth.users import get_login, update_user
from tests.support.webapp import MakeUser


async def test_login_me_and_wrong_password(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    login = await make_user(Role.engineer, "cA")
    me = await client.get("/api/v1/auth/me", headers=login.headers)
    assert me.status_code == 200
    assert me.json()["communities"] == ["cA"]
    assert me.json()["role"] == "engineer"
    bad = await client.post("/api/v1/auth/token", data={"username": login.user.username, "password": "nope-nope"})
    assert bad.status_code == 401
    assert bad.headers["www-authenticate"] == "Bearer"
    unknown = await client.post("/api/v1/auth/token", data={"username": "ghost", "password": "whatever1"})
    assert unknown.status_code == 401
    assert (await client.get("/api/v1/auth/me")).status_code == 401
    assert (await client.get("/api/v1/auth/me", headers={"Authorization": "Bearer junk"})).status_code == 401


async def test_password_stored_hashed(pool: AsyncConnectionPool[Any], make_user: MakeUser) -> None:
    login = await make_user(Role.butler, "cA")
    async with pool.connection() as conn:
        found = await get_login(conn, login.user.username)
    assert found is not None
    assert found[1].startswith("$argon2id$")
    assert login.password not in found[1]


async def test_login_rate_limited_per_user_and_ip(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    login = await make_user(Role.butler, "cA")
    codes = []
    for _ in range(7):
        r = await client.post("/api/v1/auth/token", data={"username": login.user.username, "password": "wrong-pass"})
        codes.append(r.status_code)
    assert codes[:5] == [401] * 5
    assert codes[5:] == [429, 429]
    throttled = await client.post("/api/v1/auth/token",
                                  data={"username": login.user.username, "password": login.password})
    assert throttled.status_code == 429  # even the right password waits: no guessing oracle
    assert int(throttled.headers["retry-after"]) > 0


async def test_revocation_on_password_change_and_disable(client: httpx.AsyncClient, make_user: MakeUser,
                                                         pool: AsyncConnectionPool[Any]) -> None:
    login = await make_user(Role.resident, "cA")
    r = await client.post("/api/v1/auth/password", headers=login.headers,
                          json={"current_password": login.password, "new_password": "a-brand-new-pass"})
    assert r.status_code == 204
    assert (await client.get("/api/v1/auth/me", headers=login.headers)).status_code == 401
    r = await client.post("/api/v1/auth/token", data={"username": login.user.username, "password": "a-brand-new-pass"})
    assert r.status_code == 200
    fresh = {"Authorization": f"Bearer {r.json()['access_token']}"}
    assert (await client.get("/api/v1/auth/me", headers=fresh)).status_code == 200
    async with pool.connection() as conn:
        await update_user(conn, login.user.id, disabled=True)
    assert (await client.get("/api/v1/auth/me", headers=fresh)).status_code == 401


async def test_user_admin_roles_and_scoping(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user(Role.admin)
    eng_a = await make_user(Role.engineer, "cA")
    butler_a = await make_user(Role.butler, "cA")
    butler_b = await make_user(Role.butler, "cB")
    body = {"username": "newbie", "password": "newbie-password", "role": "butler", "communities": ["cA"]}
    assert (await client.post("/api/v1/users", json=body, headers=eng_a.headers)).status_code == 403
    assert (await client.post("/api/v1/users", json=body, headers=butler_a.headers)).status_code == 403
    created = await client.post("/api/v1/users", json=body, headers=admin.headers)
    assert created.status_code == 201, created.text
    assert (await client.post("/api/v1/users", json=body, headers=admin.headers)).status_code == 409
    listed = await client.get("/api/v1/users", headers=eng_a.headers)
    names = {u["username"] for u in listed.json()}
    assert butler_a.user.username in names
    assert butler_b.user.username not in names
    assert (await client.get(f"/api/v1/users/{butler_b.user.id}", headers=eng_a.headers)).status_code == 404
    assert (await client.get("/api/v1/users?community=cB", headers=eng_a.headers)).status_code == 404
    assert (await client.get("/api/v1/users", headers=butler_a.headers)).status_code == 403
    patched = await client.patch(f"/api/v1/users/{butler_a.user.id}", headers=admin.headers,
                                 json={"communities": ["cA", "cB"]})
    assert patched.json()["communities"] == ["cA", "cB"]
    # a change of tenants revokes the old token
    assert (await client.get("/api/v1/auth/me", headers=butler_a.headers)).status_code == 401


async def test_seed_demo_users_is_idempotent(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient) -> None:
    async with pool.connection() as conn:
        first = await seed_demo_users(conn, "demo")
        again = await seed_demo_users(conn, "demo")
    assert {x.role for x in first} == set(Role)
    assert [x.user_id for x in first] == [x.user_id for x in again]
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT count(*) FROM butlers WHERE community = 'demo' AND user_id IS NOT NULL"
                                 " AND contractor_id IS NULL")
        row = await cur.fetchone()
    assert row == (3,)  # both demo butlers and the demo volunteer can receive work, once each
    for login in again:
        r = await client.post("/api/v1/auth/token", data={"username": login.username, "password": login.password})
        assert r.status_code == 200
