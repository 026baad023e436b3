"""Hostile input to the HTTP API: SQL injection, oversized input, and what a login leaves behind.

Authentication on every endpoint, tenant isolation and schemathesis fuzzing (no 5xx) are in
``tests/cloud/auth/test_tenancy.py`` and ``tests/cloud/api/test_api_fuzz.py``; masking of residents' names
and phones for roles that do not need them in ``tests/cloud/api/test_workorders_api.py``. This file
adds what those do not: injection strings everywhere a string reaches SQL, inputs far past every
limit, and the stored form of passwords.
"""

from __future__ import annotations

from typing import Any

import httpx
from psycopg_pool import AsyncConnectionPool

from bench.webdata import build_world
from cloud.auth.roles import Role
from tests.support.webapp import MakeUser

INJECTIONS = [
    "' OR '1'='1", "'; DROP TABLE users; --", "\" OR 1=1 --", "x') UNION SELECT username, password_hash FROM users --",
    "%' OR community LIKE '%", "1; SELECT pg_sleep(5)", "\\'; COPY users TO '/tmp/x'; --", "cB' --",
]


async def _tables(pool: AsyncConnectionPool[Any]) -> set[str]:
    async with pool.connection() as conn:
        rows = await (await conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).fetchall()
    return {r[0] for r in rows}


async def test_sql_injection_strings_are_data_not_sql(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient,
                                                      make_user: MakeUser) -> None:
    async with pool.connection() as conn:
        world = await build_world(conn, ["cA", "cB"], devices_per_community=4, days=1, minute_days=1)
    engineer = await make_user(Role.engineer, "cA")
    tables = await _tables(pool)
    foreign = set(world.device_ids["cB"])
    for payload in INJECTIONS:
        for params in ({"q": payload}, {"community": payload}, {"building": payload}, {"kind": payload},
                       {"state": payload}):
            resp = await client.get("/api/v1/devices", params=params, headers=engineer.headers)
            assert resp.status_code in (200, 400, 404, 422), (params, resp.status_code, resp.text[:200])
            if resp.status_code == 200:
                ids = {d["id"] for d in resp.json()["devices"]}
                assert not ids & foreign, f"{params} leaked another community's devices"
        for path in (f"/api/v1/devices/{payload}", f"/api/v1/work-orders/{payload}", f"/api/v1/alarms/{payload}"):
            resp = await client.get(path, headers=engineer.headers)
            assert 400 <= resp.status_code < 500, (path, resp.status_code)
        resp = await client.get("/api/v1/work-orders", params={"state": payload}, headers=engineer.headers)
        assert resp.status_code in (200, 400, 422), resp.text[:200]
        login = await client.post("/api/v1/auth/token", data={"username": payload, "password": payload})
        assert login.status_code in (400, 401, 422, 429), login.text[:200]
    assert await _tables(pool) == tables


async def test_oversized_inputs_are_refused_with_4xx(pool: AsyncConnectionPool[Any], client: httpx.AsyncClient,
                                                     make_user: MakeUser) -> None:
    resident = await make_user(Role.resident, "cO")
    engineer = await make_user(Role.engineer, "cO")
    huge = "水" * 200_000
    cases = [
        client.get("/api/v1/devices", params={"q": "x" * 10_000}, headers=engineer.headers),
        client.get("/api/v1/devices", params={"limit": 10**12}, headers=engineer.headers),
        client.post("/api/v1/reports", headers=resident.headers, json={"community": "cO", "text": huge}),
        client.post("/api/v1/reports", headers=resident.headers,
                    json={"community": "cO", "text": "ok", "photos": ["x"] * 10_000}),
        client.post("/api/v1/work-orders", headers=engineer.headers,
                    json={"community": "cO", "title": "t" * 5_000}),
        client.post("/api/v1/auth/token", data={"username": "u" * 100_000, "password": "p"}),
        client.post("/api/v1/auth/token", data={"username": "someone", "password": "p" * 1_000_000}),
        client.post("/api/v1/reports", headers={**resident.headers, "Content-Type": "application/json"},
                    content=b"[" * 100_000),
    ]
    for request in cases:
        resp = await request
        assert 400 <= resp.status_code < 500, (resp.request.url, resp.status_code, resp.text[:200])


async def test_passwords_are_stored_as_argon2id_only(pool: AsyncConnectionPool[Any], make_user: MakeUser) -> None:
    login = await make_user(Role.butler, "cP")
    async with pool.connection() as conn:
        cols = await (await conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'"
            " AND data_type IN ('text', 'character varying', 'jsonb')")).fetchall()
        for (col,) in cols:
            row = await (await conn.execute(
                f'SELECT "{col}"::text FROM users WHERE id = %s', (login.user.id,))).fetchone()
            value = (row[0] if row else None) or ""
            assert login.password not in value, f"users.{col} holds the password"
        hashes = await (await conn.execute("SELECT password_hash FROM users WHERE id = %s",
                                           (login.user.id,))).fetchone()
    assert hashes is not None
    assert hashes[0].startswith("$argon2id$")


async def test_state_changes_leave_a_trail_with_the_actor(pool: AsyncConnectionPool[Any],
                                                           client: httpx.AsyncClient, make_user: MakeUser) -> None:
    resident = await make_user(Role.resident, "cT")
    engineer = await make_user(Role.engineer, "cT")
    created = await client.post("/api/v1/reports", headers=resident.headers,
                                json={"community": "cT", "text": "电梯异响"})
    assert created.status_code == 201, created.text
    wo_id = created.json()["work_order_id"]
    resp = await client.post(f"/api/v1/work-orders/{wo_id}/transitions", headers=engineer.headers,
                             json={"action": "cancel", "note": "duplicate"})
    assert resp.status_code == 200, resp.text
    async with pool.connection() as conn:
        trail = await (await conn.execute("SELECT * FROM work_order_trail WHERE work_order_id = %s ORDER BY id",
                                          (wo_id,))).fetchall()
    text = " ".join(str(r) for r in trail)
    assert len(trail) >= 2
    assert engineer.user.username in text or str(engineer.user.id) in text
