"""The authorization matrix: every route of the app × every subject × own/other community.

Generated, not written: the routes come from the app itself (``app.routes``), the expected outcome
of each cell from the policy table (:data:`cloud.auth.policy.POLICY`). A route without a row
fails here (and stops the app from being built); a row without a route fails too, so the table
cannot rot. Outcomes (the same rule for API and pages, see SECURITY.md):

* anonymous → API 401 (JSON ``unauthorized``), page 303 to ``/login``;
* subject not in the row → 403 (JSON ``forbidden`` for the API, the HTML error page for pages);
* allowed subject, another community's resource → 404 (never 2xx);
* allowed subject, own resource → the handler answered: not 401/403/404, not 5xx (a 422 for an
  empty body or a 409 of the state machine count: the request got past authorization).

Subjects: admin, engineer, butler (with an active butler record), butler_unlinked (butler role,
no record), resident, contractor (a contractor company's user, issue 17), and anonymous.

Contractor isolation: on a route scoped to one work order, a contractor reaches only orders
assigned to their company's field staff. Every such cell is therefore sent twice for them: with
the estate's order of their own community (assigned to the property's butler) → 404, and with
the order assigned to their company → allowed. Each request carries fresh credentials (a token for the
API, a session cookie plus its CSRF token for pages), because some cells log out.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from psycopg_pool import AsyncConnectionPool

from bench.webdata import World, build_world
from cloud.app import route_list
from cloud.auth.policy import FRAMEWORK_ROUTES, POLICY, Scope, Subject, missing_rules, rule_for
from cloud.auth.roles import Role
from cloud.auth.service import AuthState
from cloud.auth.tenancy import ORDER_ID_PARAMS, TENANT_ID_PARAMS
from cloud.auth.users import User, create_user
from cloud.web import photos
from guanjia.core.settings import Settings

_PARAM = re.compile(r"{([^}:]+)(?::[^}]*)?}")
#: streams never end by design: a cell that passes authorization is seen as a stream still open
STREAMS = {("GET", "/api/v1/inbox/stream"), ("GET", "/api/v1/devices/{device_id}/live"),
           ("GET", "/api/v1/resident/inbox/stream")}
STREAM_OPEN_S = 1.0
#: the handler's own 404 for a resource that exists but has no data yet (not an authz answer)
DOMAIN_404 = {("GET", "/api/v1/analytics/devices/{device_id}/health"): "no health record"}
#: routes that take ``?community=`` / ``?butler_id=`` get them filled from the side under test
QUERY_TENANT_PARAMS = ("community", "butler_id")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(16)


@dataclass(slots=True)
class Estate:
    world: World
    users: dict[Subject, User]
    ids: dict[str, dict[str, Any]]  # "own" / "other" → path and query parameter values


async def _estate(pool: AsyncConnectionPool[Any], settings: Settings) -> Estate:
    async with pool.connection() as conn:
        users = {
            Subject.admin: await create_user(conn, "m-admin", "pw-admin-secret", Role.admin, []),
            Subject.engineer: await create_user(conn, "m-engineer", "pw-engineer-secret", Role.engineer, ["cA"]),
            Subject.butler: await create_user(conn, "m-butler", "pw-butler-secret", Role.butler, ["cA"]),
            Subject.butler_unlinked: await create_user(conn, "m-unlinked", "pw-unlinked-secret", Role.butler, ["cA"]),
            Subject.resident: await create_user(conn, "m-resident", "pw-resident-secret", Role.resident, ["cA"]),
        }
        cur = await conn.execute("INSERT INTO contractors (name, created_at) VALUES ('迅达维保', now()) RETURNING id")
        company = (await cur.fetchone() or (0,))[0]
        users[Subject.contractor] = await create_user(conn, "m-contractor", "pw-contractor-secret", Role.contractor,
                                                      ["cA"])
        await conn.execute("UPDATE users SET contractor_id = %s WHERE id = %s", (company, users[Subject.contractor].id))
        spare = {c: await create_user(conn, f"m-spare-{c}", "pw-spare-secret", Role.resident, [c])
                 for c in ("cA", "cB")}
        butler_b = await create_user(conn, "m-butler-b", "pw-butler-b-secret", Role.butler, ["cB"])
        world = await build_world(conn, ["cA", "cB"], devices_per_community=10, days=1, minute_days=0,
                                  butler_users={"cA": [users[Subject.butler].id], "cB": [butler_b.id]})
        ids: dict[str, dict[str, Any]] = {}
        for side, c in (("own", "cA"), ("other", "cB")):
            wo = world.work_order_ids[c][0]  # state "assigned", assigned to the community's linked butler
            await conn.execute("UPDATE work_orders SET reporter_user_id = %s WHERE id = %s",
                               (users[Subject.resident].id if c == "cA" else spare["cB"].id, wo))
            cur = await conn.execute(
                "INSERT INTO dead_letters (topic, community, gateway, reason, payload, payload_size)"
                " VALUES (%s, %s, 'gw-1', 'bad_json', '\\x00', 1) RETURNING id", (f"guanjia/v1/{c}/gw-1/telemetry", c))
            dead = await cur.fetchone()
            assert dead is not None
            cur = await conn.execute(
                "INSERT INTO complaints (community, grade, text, reporter_user_id, state, handle_due, close_due,"
                " created_at, updated_at) VALUES (%s, 'general', '服务态度差', %s, 'received', now(), now(), now(),"
                " now()) RETURNING id", (c, users[Subject.resident].id if c == "cA" else spare["cB"].id))
            complaint = await cur.fetchone()
            assert complaint is not None
            cur = await conn.execute(
                "INSERT INTO points_redemptions (butler_id, community, points, service, created_at)"
                " VALUES (%s, %s, 1, '家电清洗', now()) RETURNING id", (world.butler_ids[c][0], c))
            redemption = await cur.fetchone()
            assert redemption is not None
            photo = photos.store(settings.run_dir, c, PNG).rsplit("/", 1)[1]
            cur = await conn.execute("INSERT INTO report_subscriptions (community, period, emails, created_at)"
                                     " VALUES (%s, 'month', '{m@example.com}', now()) RETURNING id", (c,))
            subscription = await cur.fetchone()
            assert subscription is not None
            await conn.execute(
                "INSERT INTO device_commands (command_id, community, gateway, device_id, device, point, value,"
                " issued_by, status, created_at, expires_at) SELECT %s, %s, 'gw-1', d.id, d.code, 'fault_reset',"
                " 'true', 'm-engineer', 'pending', now(), now() + interval '1 hour' FROM devices d WHERE d.id = %s",
                (f"c-matrix-{c}", c, world.device_ids[c][0]))
            cur = await conn.execute(
                "INSERT INTO maintenance_plans (community, scope, target, template, starts_on, created_at)"
                " VALUES (%s, 'community', '', 'lift.half_monthly', current_date, now()) RETURNING id", (c,))
            plan = (await cur.fetchone() or (0,))[0]
            cur = await conn.execute("INSERT INTO inspection_routes (community, name, every_hours, created_at)"
                                     " VALUES (%s, '巡查', 4, now()) RETURNING id", (c,))
            route = (await cur.fetchone() or (0,))[0]
            await conn.execute("INSERT INTO inspection_checkpoints (route_id, code, name) VALUES (%s, %s, '大堂')",
                               (route, f"XJ-M{c}"))
            cur = await conn.execute(
                "INSERT INTO contractor_contracts (contractor_id, community, skill, on_site_within, resolve_within,"
                " starts_on, work, created_at) VALUES (%s, %s, 'elevator', '30 min', '2 h', current_date,"
                " '{maintenance,rescue}', now()) RETURNING id", (company, c))
            contract = (await cur.fetchone() or (0,))[0]
            # a configuration rollout to the community's gateway (issue 19)
            gateway = world.gateway_ids[c]
            await conn.execute("INSERT INTO edge_config_versions (gateway_id, version, files, created_by, created_at)"
                               " VALUES (%s, 'aaaaaaaaaaaa', '{}', 'm-admin', now())", (gateway,))
            cur = await conn.execute(
                "INSERT INTO config_rollouts (state, canary, percent, created_by, created_at, updated_at)"
                " VALUES ('halted', 1, 50, 'm-admin', now(), now()) RETURNING id")
            rollout = (await cur.fetchone() or (0,))[0]
            await conn.execute("INSERT INTO config_rollout_targets (rollout_id, gateway_id, position, stage, version,"
                               " push_id) VALUES (%s, %s, 0, 0, 'aaaaaaaaaaaa', %s)", (rollout, gateway, f"r-{c}"))
            ids[side] = {
                "plan_id": plan, "route_id": route, "contract_id": contract,
                "device_id": world.device_ids[c][0], "gateway_id": world.gateway_ids[c],
                "alarm_id": world.alarm_ids[c][0], "wo_id": wo, "work_order_id": wo,
                "user_id": spare[c].id, "butler_id": world.butler_ids[c][0], "dead_letter_id": dead[0],
                "complaint_id": complaint[0], "subscription_id": subscription[0], "redemption_id": redemption[0],
                "community": c, "name": photo, "path": "app.js", "action": "accept", "command_id": f"c-matrix-{c}",
                "rollout_id": rollout, "day": "2026-03-10",
            }
        # the contractor's field-staff record (acting as the contractor user) and an order assigned to it
        cur = await conn.execute(
            "INSERT INTO butlers (user_id, name, community, skills, contractor_id) VALUES (%s, '迅达张工', 'cA',"
            " '{elevator}', %s) RETURNING id", (users[Subject.contractor].id, company))
        field_staff = (await cur.fetchone() or (0,))[0]
        theirs = world.work_order_ids["cA"][1]
        await conn.execute("UPDATE work_orders SET assignee_id = %s WHERE id = %s", (field_staff, theirs))
        ids["contractor"] = ids["own"] | {"wo_id": theirs, "work_order_id": theirs}
    return Estate(world, users, ids)


async def _credentials(pool: AsyncConnectionPool[Any], auth: AuthState, user: User, page: bool) -> dict[str, str]:
    """Fresh credentials of ``user`` (tokens are issued directly: the login itself is tested
    elsewhere, and argon2 per cell would make the matrix slow)."""
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT token_version FROM users WHERE id = %s", (user.id,))
        row = await cur.fetchone()
    assert row is not None
    if not page:
        token, _ttl = auth.tokens.issue(user.id, row[0], "access")
        return {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    session, _ttl = auth.tokens.issue(user.id, row[0], "session")
    jti = auth.tokens.decode(session, "session").jti
    return {"Cookie": f"guanjia_session={session}", "X-CSRF-Token": auth.tokens.csrf_token(jti)}


def _query_params(app: FastAPI, method: str, path: str) -> set[str]:
    for route in app.routes:
        contexts = route.effective_route_contexts() if hasattr(route, "effective_route_contexts") else [route]
        for ctx in contexts:
            if getattr(ctx, "path", None) == path and method in (getattr(ctx, "methods", None) or ()):
                dependant = getattr(ctx, "dependant", None)
                if dependant is not None:
                    return {p.alias for p in dependant.query_params}
    return set()


def _url(path: str, values: dict[str, Any], query: set[str]) -> str:
    url = _PARAM.sub(lambda m: str(values[m.group(1)]), path)
    extra = [f"{name}={values[name]}" for name in QUERY_TENANT_PARAMS if name in query]
    return url + ("?" + "&".join(extra) if extra else "")


async def _send(client: httpx.AsyncClient, method: str, path: str, url: str, headers: dict[str, str]) -> int | None:
    """The status, or None for a stream that stayed open (it got past authorization)."""
    kwargs: dict[str, Any] = {"headers": headers, "follow_redirects": False}
    if method != "GET" and path.startswith("/api/"):
        kwargs["json"] = {}
    if (method, path) in STREAMS:
        try:
            resp = await asyncio.wait_for(client.request(method, url, **kwargs), STREAM_OPEN_S)
        except TimeoutError:
            return None
    else:
        resp = await client.request(method, url, **kwargs)
    return _check_shape(resp, path)


def _check_shape(resp: httpx.Response, path: str) -> int:
    if resp.status_code in (401, 403, 404):
        if path.startswith("/api/"):
            assert resp.json()["error"]["code"] in ("unauthorized", "forbidden", "not_found"), resp.text[:200]
        else:
            assert resp.headers["content-type"].startswith("text/html"), (path, resp.status_code)
    return resp.status_code


async def test_policy_table_and_routes_agree(app: FastAPI) -> None:
    routes = route_list(app)
    assert missing_rules(routes) == []
    stale = sorted(set(POLICY) - set(routes))
    assert stale == [], f"policy rows without a route: {stale}"
    assert {p for _m, p in routes} >= FRAMEWORK_ROUTES


async def test_every_route_every_subject_both_communities(app: FastAPI, client: httpx.AsyncClient,
                                                          pool: AsyncConnectionPool[Any], settings: Settings) -> None:
    estate = await _estate(pool, settings)
    auth: AuthState = app.state.auth
    cells = 0
    failures: list[str] = []
    for method, path in route_list(app):
        if path in FRAMEWORK_ROUTES:
            continue
        rule = rule_for(method, path)
        assert rule is not None, f"{method} {path}: no row in cloud/auth/policy.py"
        page = not path.startswith("/api/")
        query = _query_params(app, method, path) & set(QUERY_TENANT_PARAMS)
        tenant_bound = bool((set(_PARAM.findall(path)) & (TENANT_ID_PARAMS | {"community"})) or query)
        sides = ("own", "other") if tenant_bound else ("own",)
        for side in sides:
            url = _url(path, estate.ids[side], query)
            # anonymous
            status = await _send(client, method, path, url, {"Accept": "application/json"} if not page else {})
            if rule.scope is Scope.public:
                expected_ok = status is None or (status < 500 and status not in (401, 403))
                if not expected_ok:
                    failures.append(f"anonymous {method} {url} -> {status} (public route)")
                cells += 1
                continue
            want = 303 if page else 401
            if status != want:
                failures.append(f"anonymous {method} {url} -> {status}, expected {want}")
            cells += 1
            for subject, user in estate.users.items():
                headers = await _credentials(pool, auth, user, page)
                status = await _send(client, method, path, url, headers)
                cells += 1
                if (subject is Subject.contractor and subject in rule.subjects and side == "own"
                        and rule.scope is Scope.assignment and set(_PARAM.findall(path)) & ORDER_ID_PARAMS):
                    # isolation: their community's order of the property's butler is not theirs
                    if status != 404:
                        failures.append(f"contractor {method} {url} (not their company's) -> {status}, expected 404")
                    url_theirs = _url(path, estate.ids["contractor"], query)
                    status = await _send(client, method, path, url_theirs, await _credentials(pool, auth, user, page))
                    cells += 1
                if subject not in rule.subjects:
                    expected = "403"
                    ok = status == 403
                elif side == "other" and subject is not Subject.admin and rule.scope is not Scope.any:
                    expected = "404"
                    ok = status == 404
                else:
                    expected = "allowed"
                    ok = status is None or (status < 500 and status not in (401, 403, 404))
                    if status == 404 and (method, path) in DOMAIN_404:
                        ok = True
                if not ok:
                    failures.append(f"{subject.value} {method} {url} ({side}) -> {status}, expected {expected}")
    assert not failures, f"{len(failures)} of {cells} cells wrong:\n" + "\n".join(failures)
    assert cells >= 500, cells


@pytest.mark.parametrize("subject", list(Subject))
def test_subjects_of_roles(subject: Subject) -> None:
    from cloud.auth.policy import subject_of

    role = Role.butler if subject is Subject.butler_unlinked else Role(subject.value)
    assert subject_of(role, subject is not Subject.butler_unlinked) is subject
