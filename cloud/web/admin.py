"""The self-service admin pages: estate (communities, buildings, floors), devices (CSV import and
export), people (butlers, skills, rosters, contractors) and a community's policy (SLA clocks,
notifications), and a community's day calendar (holidays, make-up workdays, its own closure
days: what the equipment-health analytics do not judge). Gateways keep their own pages
(``/gateways``: tokens, rotation, revocation).

Why the forms post to the JSON API (``static/admin.js``) instead of to page routes: one route per
change means one validation, one audit row and one authorization row for both the API and the
page, and the API's 422 (``detail: [{loc, msg}]``) is what the form shows next to each field.
The pages read through the same repositories the API answers from, so both show the same thing.
Admins change; the community's engineers (managers) read people and policies without the forms,
except a butler's service profile (hire date, certificates), which they keep for their community.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request, status
from fastapi.responses import Response
from psycopg import AsyncConnection

from cloud.analytics import calendar_store
from cloud.auth.deps import PageUser, app_pool
from cloud.auth.roles import Role
from cloud.auth.users import User
from cloud.http.deps import get_clock, get_policy
from cloud.http.rendering import render
from cloud.ops.notify import wording
from cloud.ops.notify.templates import TEXTS, overridable
from cloud.ops.policies import repo as policies
from cloud.ops.routing import staff
from cloud.ops.workorders import profile
from cloud.queries.sites import community_codes
from cloud.registry.admin import list_buildings, list_communities

router = APIRouter(include_in_schema=False)

SKILLS = ("elevator", "water", "electrical", "access", "general")
WEEKDAYS = range(7)


def _forbidden(request: Request, user: User) -> Response:
    return render(request, "error.html", user, status.HTTP_403_FORBIDDEN, message_key="error.forbidden")


def _community(request: Request, user: User, known: list[str]) -> str | None:
    """The community the page is about: ``?community=`` (the policy checked it is the user's),
    else the user's first, else the first there is."""
    asked = request.query_params.get("community")
    if asked:
        return asked
    mine = [c for c in known if user.can_see(c)]
    return mine[0] if mine else None


async def _scope(conn: AsyncConnection[Any], request: Request, user: User) -> tuple[list[str], str | None]:
    """The communities the user may pick from and the one the page shows."""
    communities = [c for c in await community_codes(conn) if user.can_see(c)]
    return communities, _community(request, user, communities)


@router.get("/admin/estate")
async def estate_page(request: Request, user: PageUser) -> Response:
    if user.role is not Role.admin:
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        communities = await list_communities(conn)
        community = _community(request, user, [c.code for c in communities])
        buildings = await list_buildings(conn, community) if community else []
    return render(request, "admin_estate.html", user, communities=communities, community=community,
                  buildings=buildings)


@router.get("/admin/devices")
async def devices_page(request: Request, user: PageUser) -> Response:
    if user.role is not Role.admin:
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        communities = await community_codes(conn)
    return render(request, "admin_devices.html", user, communities=communities)


@router.get("/admin/people")
async def people_page(request: Request, user: PageUser) -> Response:
    if user.role not in (Role.admin, Role.engineer):
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        communities, community = await _scope(conn, request, user)
        butlers = await staff.list_butlers(conn, community) if community else []
        contractors = await staff.list_contractors(conn) if user.is_admin else []
        buildings = [b.code for b in await list_buildings(conn, community)] if community else []
        now = get_clock(request).now()
        profiles = {b.id: await profile.read(conn, b.id, now) for b in butlers}
    # the service profile (hire date, certificates) is the community engineers' to keep too
    return render(request, "admin_people.html", user, communities=communities, community=community,
                  butlers=butlers, contractors=contractors, skills=SKILLS, weekdays=WEEKDAYS, buildings=buildings,
                  leads=[b for b in butlers if b.role != "butler" and b.active], editable=user.is_admin,
                  profiles=profiles, profile_editable=user.role in (Role.admin, Role.engineer))


@router.get("/admin/policies")
async def policies_page(request: Request, user: PageUser) -> Response:
    if user.role not in (Role.admin, Role.engineer):
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        communities, community = await _scope(conn, request, user)
        policy = policies.view(get_policy(request), await policies.load(conn, community)) if community else None
        tz = await staff.community_timezone(conn, community) if community else None
        words = await wording.rows(conn, community) if community else []
    return render(request, "admin_policies.html", user, communities=communities, community=community,
                  policy=policy, tz=tz, editable=user.is_admin, wording=words,
                  wording_codes=[(code, pair[0]) for code, pair in TEXTS.items() if overridable(code)])


@router.get("/admin/calendar")
async def calendar_page(request: Request, user: PageUser) -> Response:
    """A community's holidays, make-up workdays and own days of a year (the analytics' day
    calendar, issue 15); admins add and remove the community's own days (the API's routes)."""
    if user.role not in (Role.admin, Role.engineer):
        return _forbidden(request, user)
    async with app_pool(request).connection() as conn:
        communities, community = await _scope(conn, request, user)
        zone = await calendar_store.zone_of(conn, community) if community else None
        view = None
        if community and zone:
            asked = request.query_params.get("year", "")
            year = int(asked) if asked.isdigit() and 2000 <= int(asked) <= 2099 else \
                get_clock(request).now().astimezone(ZoneInfo(zone)).year
            view = await calendar_store.view(conn, community, zone, year)
    return render(request, "admin_calendar.html", user, communities=communities, community=community,
                  calendar=view, editable=user.is_admin)
