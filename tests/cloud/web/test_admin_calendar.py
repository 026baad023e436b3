"""The day-calendar admin page (issue 15): the statutory days and a community's own, in both
languages; admins get the form, the community's engineers read, other tenants 404, butlers 403."""

from __future__ import annotations

import httpx

from cloud.auth.roles import Role
from tests.support.webapp import MakeUser, browser_session


async def test_calendar_page_roles_tenants_and_languages(client: httpx.AsyncClient, make_user: MakeUser) -> None:
    admin = await make_user(Role.admin)
    for code in ("lvyuan", "qingyuan"):
        assert (await client.post("/api/v1/admin/communities", headers=admin.headers,
                                  json={"code": code})).status_code == 200
    assert (await client.put("/api/v1/analytics/communities/lvyuan/calendar/2026-03-10", headers=admin.headers,
                             json={"kind": "holiday", "note": "停水检修"})).status_code == 200
    me = await browser_session(client, admin)
    page = await client.get("/admin/calendar?community=lvyuan&year=2026", headers=me)
    assert page.status_code == 200
    assert 'id="calendar-form"' in page.text
    assert '<tr data-day="2026-02-17" data-type="holiday" data-source="statutory">' in page.text
    assert "春节" in page.text
    assert '<tr data-day="2026-02-14" data-type="makeup"' in page.text
    assert "调休上班" in page.text
    assert "停水检修" in page.text
    english = await client.get("/admin/calendar?community=lvyuan&year=2026&lang=en", headers=me)
    assert "Spring Festival" in english.text
    assert "make-up workday" in english.text

    engineer = await browser_session(client, await make_user(Role.engineer, "lvyuan"))
    read = await client.get("/admin/calendar?year=2026", headers=engineer)  # their own community by default
    assert read.status_code == 200
    assert "停水检修" in read.text
    assert 'id="calendar-form"' not in read.text
    assert "calendar-remove" not in read.text
    assert (await client.get("/admin/calendar?community=qingyuan", headers=engineer)).status_code == 404
    butler = await browser_session(client, await make_user(Role.butler, "lvyuan"))
    assert (await client.get("/admin/calendar", headers=butler)).status_code == 403
    for year in ("abc", "1066", "99999999999999999999"):  # an odd year reads as this year
        assert (await client.get(f"/admin/calendar?community=lvyuan&year={year}", headers=me)).status_code == 200
    assert (await client.get("/admin/calendar?community=lvyuan&year=x%00", headers=me)).status_code == 400
