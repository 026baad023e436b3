"""Devices from CSV: every error listed with its line, nothing half-imported; export imports back."""

from __future__ import annotations

import csv
import io

import httpx
import psycopg
import pytest

from cloud.auth.roles import Role
from cloud.registry import store
from tests.support.webapp import MakeUser

HEADER = "community,code,name,kind,profile,gateway,building,floor,lat,lon\n"


@pytest.fixture
def estate(web_db: str) -> str:
    with psycopg.connect(web_db) as conn:
        store.add_gateway(conn, "csvc", "gw-1")
        store.add_building(conn, "csvc", "b1", floors=20)
        store.add_device(conn, "csvc", "b1-pump-1", gateway="gw-1", kind="pump", profile_id="vfd-pump")
    return web_db


def _count(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT count(*) FROM devices").fetchone()
    assert row is not None
    return int(row[0])


async def _post(client: httpx.AsyncClient, headers: dict[str, str], text: str) -> httpx.Response:
    return await client.post("/api/v1/admin/devices/import", content=text.encode(),
                             headers={**headers, "Content-Type": "text/csv"})


async def test_errors_are_listed_by_line_and_nothing_is_imported(client: httpx.AsyncClient, make_user: MakeUser,
                                                                 estate: str) -> None:
    admin = await make_user(Role.admin)
    text = HEADER + "\n".join([
        "csvc,b1-lift-1,1号梯,elevator,elevator-gbt24476,gw-1,b1,1,31.2,121.5",   # line 2: fine
        "nowhere,x1,,pump,,,,,,",                                                 # line 3: community
        "csvc,b1-pump-2,,pump,eastron-sdm630,gw-9,b7,three,95,",                  # line 4: five problems
        "csvc,b1-lift-1,again,elevator,,,,,,",                                    # line 5: duplicate
        "csvc,bad/code,,toaster,,,,,,",                                           # line 6: code, kind
    ]) + "\n"
    before = _count(estate)
    resp = await _post(client, admin.headers, text)
    assert resp.status_code == 422, resp.text
    body = resp.json()["error"]
    assert body["code"] == "invalid_csv"
    assert "nothing was imported" in body["message"]
    found = {(e["line"], e["column"]) for e in body["detail"]}
    assert found == {(3, "community"), (4, "profile"), (4, "gateway"), (4, "building"), (4, "floor"), (4, "lat"),
                     (5, "code"), (6, "code"), (6, "kind")}
    assert _count(estate) == before  # not even line 2


async def test_import_creates_updates_and_round_trips(client: httpx.AsyncClient, make_user: MakeUser,
                                                      estate: str) -> None:
    admin = await make_user(Role.admin)
    text = "\ufeff" + HEADER + "csvc,b1-lift-1,1号梯,elevator,elevator-gbt24476,gw-1,b1,1,31.2,121.5\n" \
        "csvc,b1-pump-1,renamed,pump,vfd-pump,gw-1,,,,\n"
    resp = await _post(client, admin.headers, text)
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"rows": 2, "created": 1, "updated": 1}
    export = await client.get("/api/v1/admin/devices/export?community=csvc", headers=admin.headers)
    assert export.status_code == 200
    assert export.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(export.text)))
    assert {(r["code"], r["name"], r["building"]) for r in rows} == {("b1-lift-1", "1号梯", "b1"),
                                                                    ("b1-pump-1", "renamed", "")}
    again = await _post(client, admin.headers, export.text)  # an export imports back unchanged
    assert again.json() == {"rows": 2, "created": 0, "updated": 2}
    audit = (await client.get("/api/v1/audit", headers=admin.headers)).json()
    assert [a["action"] for a in audit][:2] == ["devices.imported", "devices.imported"]
    assert audit[-1]["detail"]["created"] == 1


async def test_bad_files_and_other_roles(client: httpx.AsyncClient, make_user: MakeUser, estate: str) -> None:
    admin = await make_user(Role.admin)
    resp = await _post(client, admin.headers, "code,kind\nx,pump\n")
    assert resp.status_code == 422
    assert resp.json()["error"]["detail"][0]["line"] == 1
    resp = await client.post("/api/v1/admin/devices/import", content=b"\xff\xfe\x00bad",
                             headers={**admin.headers, "Content-Type": "text/csv"})
    assert resp.status_code == 422
    assert (await _post(client, admin.headers, HEADER)).status_code == 422  # no rows
    engineer = await make_user(Role.engineer, "csvc")
    assert (await _post(client, engineer.headers, HEADER)).status_code == 403
    assert (await client.get("/api/v1/admin/devices/export", headers=engineer.headers)).status_code == 403
