"""A community's notification wording from the admin API: admins write, the community's engineers
read, other tenants see nothing; an unknown placeholder is a 422 at ``template`` in the documented
error shape, naming the placeholders the message has; changes are audited."""

from __future__ import annotations

from typing import Any

import httpx

from cloud.auth.roles import Role
from tests.support.webapp import MakeUser

URL = "/api/v1/admin/communities/{}/wording"


async def test_wording_api(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user(Role.admin)
    h = admin.headers
    for code in ("lvyuan", "qingyuan"):
        assert (await client.post("/api/v1/admin/communities", headers=h, json={"code": code})).status_code == 200
    url = URL.format("lvyuan")
    saved = await client.put(url, headers=h, json={"code": "resident.on_site", "channel": "sms",
                                                   "template": "{butler}已到您家门口（#{id}）"})
    assert saved.status_code == 200, saved.text
    (row,) = saved.json()
    assert (row["code"], row["lang"], row["channel"], row["updated_by"]) == ("resident.on_site", "zh", "sms",
                                                                           admin.user.username)
    assert row["shipped"] == "{butler} 已到达现场（#{id}）。"

    bad_cases: list[tuple[Any, list[Any], str]] = [
        ({"code": "resident.on_site", "template": "{butler} 电话 {phone}"}, ["body", "template"],
         "unknown placeholder {phone}; resident.on_site has {butler}, {id}"),
        ({"code": "label.state", "template": "状况"}, ["body", "code"], "not a message that can be reworded"),
        ({"code": "resident.on_site", "channel": "pigeon", "template": "x"}, ["body", "channel"], ""),
        ({"code": "resident.on_site", "lang": "fr", "template": "x"}, ["body", "lang"], ""),
        ({"code": "resident.on_site", "template": "x" * 501}, ["body", "template"], ""),
        ({"code": "resident.on_site", "template": "{id", "extra": 1}, ["body"], ""),
    ]
    for body, loc, words in bad_cases:
        resp = await client.put(url, headers=h, json=body)
        assert resp.status_code == 422, (body, resp.text)
        error = resp.json()["error"]
        assert set(error) == {"code", "message", "detail"}
        assert error["detail"][0]["loc"][:len(loc)] == loc, (body, error)
        assert words in error["detail"][0]["msg"], error
    assert (await client.put(URL.format("nowhere"), headers=h,
                             json={"code": "resident.on_site", "template": "x"})).status_code == 404

    engineer = await make_user(Role.engineer, "lvyuan")
    assert [r["code"] for r in (await client.get(url, headers=engineer.headers)).json()] == ["resident.on_site"]
    assert (await client.put(url, headers=engineer.headers, json={"code": "resident.on_site"})).status_code == 403
    other = await make_user(Role.engineer, "qingyuan")
    assert (await client.get(url, headers=other.headers)).status_code == 404
    reset = await client.put(url, headers=h, json={"code": "resident.on_site", "channel": "sms", "template": None})
    assert reset.json() == []
    actions = [a["action"] for a in (await client.get("/api/v1/audit?community=lvyuan", headers=h)).json()]
    assert actions[:2] == ["wording.reset", "wording.updated"]
