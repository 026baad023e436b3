"""The admin pages as HTML: admins get the forms, the community's engineers read without them,
another community's pages are 404 and butlers 403; both languages; the audit log's filters."""

from __future__ import annotations

import httpx

from cloud.auth.roles import Role
from tests.support.webapp import MakeUser, browser_session


async def test_pages_roles_tenants_and_languages(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user(Role.admin)
    h = admin.headers
    for code, zone in (("lvyuan", "Asia/Shanghai"), ("qingyuan", "Asia/Urumqi")):
        assert (await client.post("/api/v1/admin/communities", headers=h,
                                  json={"code": code, "timezone": zone})).status_code == 200
    assert (await client.post("/api/v1/admin/buildings", headers=h,
                              json={"community": "lvyuan", "code": "b3", "floors": 18})).status_code == 200
    created = await client.post("/api/v1/admin/butlers", headers=h,
                                json={"community": "lvyuan", "name": "李管家", "skills": ["water"]})
    assert created.status_code == 201
    assert (await client.post("/api/v1/admin/butlers", headers=h,
                              json={"community": "qingyuan", "name": "Q管家", "skills": ["access"]})).status_code == 201

    me = await browser_session(client, admin)
    estate = await client.get("/admin/estate?community=lvyuan", headers=me)
    assert estate.status_code == 200
    assert 'id="community-form"' in estate.text
    assert "<td>b3</td>" in estate.text
    assert "18" in estate.text
    devices = await client.get("/admin/devices", headers=me)
    assert "未导入任何设备" in devices.text
    assert "/api/v1/admin/devices/export?community=lvyuan" in devices.text
    people = await client.get("/admin/people?community=lvyuan", headers=me)
    assert 'id="butler-form"' in people.text
    assert "李管家" in people.text
    assert "Q管家" not in people.text
    english = await client.get("/admin/policies?community=lvyuan&lang=en", headers=me)
    assert "Respond within" in english.text
    assert 'id="policy-form"' in english.text

    engineer = await browser_session(client, await make_user(Role.engineer, "lvyuan"))
    read = await client.get("/admin/people?community=lvyuan", headers=engineer)
    assert read.status_code == 200
    assert "李管家" in read.text
    assert 'id="butler-form"' not in read.text
    assert "roster-edit" not in read.text
    policy = await client.get("/admin/policies", headers=engineer)  # their own community by default
    assert "响应时限" in policy.text
    assert "保存" not in policy.text
    assert "lvyuan" in policy.text
    assert (await client.get("/admin/people?community=qingyuan", headers=engineer)).status_code == 404
    assert (await client.get("/admin/policies?community=qingyuan", headers=engineer)).status_code == 404
    assert (await client.get("/admin/estate", headers=engineer)).status_code == 403
    assert (await client.get("/admin/devices", headers=engineer)).status_code == 403
    butler = await browser_session(client, await make_user(Role.butler, "lvyuan"))
    assert (await client.get("/admin/people", headers=butler)).status_code == 403

    # the audit log: filters by community and by action family, times in the community's zone
    audit = await client.get("/admin/audit?community=qingyuan&action=butler.", headers=me)
    assert audit.text.count('data-action="butler.created"') == 1
    assert 'data-action="community.created"' not in audit.text
    family = (await client.get("/api/v1/audit?action=community.", headers=h)).json()
    assert [a["action"] for a in family] == ["community.created", "community.created"]
    assert [a["target"] for a in (await client.get("/api/v1/audit?community=lvyuan&action=butler.created",
                                                   headers=h)).json()] == [f"butler {created.json()['id']} 李管家"]
