"""The authorization policy of every route, written once as a table.

Why a table and not checks inside each handler: the held-out probe of issue 14 found the API and
the pages disagreeing (a butler without a butler record moved orders through the web inbox that
the API refused; residents read raw telemetry the device page hid from them). Each handler had
its own idea of who may do what. Here one row per route says *which subjects* may call it and
*which tenancy scope* its resource has; :func:`cloud.auth.deps.authorize` (the one dependency
installed on the whole app) enforces the row before any handler runs, and
``tests/security/test_authz_matrix.py`` generates the route × subject × community matrix from
this same table, so a route missing here fails both at app start and in the test.

Subjects are the roles, with one split: a ``butler``-role user counts as :attr:`Subject.butler`
only while an *active* butler record is linked to them; without one they are
:attr:`Subject.butler_unlinked` and may do nothing but manage their own account. The record is
what assignments, SLA clocks and the trail name, so without it there is nobody to act as.

Outcomes, the same for API and pages (documented in SECURITY.md):

* not signed in → API **401** (JSON), page **303** to ``/login``;
* signed in, subject not in the row → **403** (JSON for the API, the HTML error page for pages);
* subject allowed, resource of another community (or an order neither assigned to nor reported by
  the caller, for :attr:`Scope.assignment`) → **404**, so ids of other tenants cannot be probed;
* otherwise the handler runs (2xx, or a 409/422 of the domain).

Work-order transitions have a second, per-action table (:data:`TRANSITIONS`), checked by
:func:`check_transition`, which the API router and the web inbox both call.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from cloud.auth.roles import Role


class Subject(StrEnum):
    """Who is calling, as far as the policy is concerned."""

    admin = "admin"
    engineer = "engineer"
    butler = "butler"
    butler_unlinked = "butler_unlinked"
    resident = "resident"
    contractor = "contractor"


class Scope(StrEnum):
    """How the route's resource is tied to a community.

    * ``public`` — no sign-in (login, health, static files).
    * ``any`` — not a tenant's resource: the caller's own account, a platform-wide list (admins).
    * ``community`` — every community named by the request (path ids, ``?community=``,
      ``?butler_id=``) must be one of the caller's; admins see all.
    * ``assignment`` — a work order: staff of its community; the butler it is assigned to (or a
      team lead / manager of its community); the resident who reported it.
    """

    public = "public"
    any = "any"
    community = "community"
    assignment = "assignment"


@dataclass(frozen=True, slots=True)
class Rule:
    action: str
    subjects: frozenset[Subject]
    scope: Scope


A, E, B, U, R = Subject.admin, Subject.engineer, Subject.butler, Subject.butler_unlinked, Subject.resident
C = Subject.contractor
EVERYONE: Final = frozenset(Subject)
STAFF: Final = frozenset({A, E})
WORKERS: Final = frozenset({A, E, B})
#: the workers plus contractors, on routes whose scope is one work order (assignment)
FIELD: Final = frozenset({A, E, B, C})
ADMIN: Final = frozenset({A})
NOBODY: Final = frozenset[Subject]()


def _r(action: str, subjects: Iterable[Subject], scope: Scope) -> Rule:
    return Rule(action, frozenset(subjects), scope)


PUBLIC = Scope.public
ANY = Scope.any
COMMUNITY = Scope.community
ASSIGNMENT = Scope.assignment

#: (method, path template) → rule. Every HTTP route of the app must have a row.
POLICY: Final[dict[tuple[str, str], Rule]] = {
    # --- public -------------------------------------------------------------------------------
    ("GET", "/healthz"): _r("health.read", NOBODY, PUBLIC),
    ("GET", "/metrics"): _r("metrics.read", NOBODY, PUBLIC),
    ("POST", "/api/v1/auth/token"): _r("auth.login", NOBODY, PUBLIC),
    ("POST", "/api/v1/enroll"): _r("gateways.enroll", NOBODY, PUBLIC),  # the bootstrap token is the credential
    ("GET", "/static/{path:path}"): _r("static.read", NOBODY, PUBLIC),
    ("GET", "/login"): _r("auth.login_form", NOBODY, PUBLIC),
    ("POST", "/login"): _r("auth.login", NOBODY, PUBLIC),
    ("POST", "/logout"): _r("auth.logout", NOBODY, PUBLIC),
    # --- the caller's own account ----------------------------------------------------------------
    ("GET", "/api/v1/auth/me"): _r("account.read", EVERYONE, ANY),
    ("POST", "/api/v1/auth/password"): _r("account.password", EVERYONE, ANY),
    ("POST", "/api/v1/auth/logout-all"): _r("account.logout_all", EVERYONE, ANY),
    ("GET", "/"): _r("account.home", EVERYONE, ANY),
    # --- users ------------------------------------------------------------------------------------
    ("GET", "/api/v1/users"): _r("users.list", STAFF, COMMUNITY),
    ("GET", "/api/v1/users/{user_id}"): _r("users.read", STAFF, COMMUNITY),
    ("POST", "/api/v1/users"): _r("users.create", ADMIN, ANY),
    ("PATCH", "/api/v1/users/{user_id}"): _r("users.update", ADMIN, ANY),
    ("POST", "/api/v1/users/{user_id}/password"): _r("users.password", ADMIN, ANY),
    ("GET", "/admin/users"): _r("users.list", ADMIN, ANY),
    ("GET", "/api/v1/audit"): _r("audit.read", ADMIN, ANY),
    ("POST", "/api/v1/admin/devices/import"): _r("devices.import", ADMIN, ANY),
    ("GET", "/api/v1/admin/communities"): _r("registry.read", ADMIN, ANY),
    ("POST", "/api/v1/admin/communities"): _r("registry.write", ADMIN, ANY),
    ("GET", "/api/v1/admin/buildings"): _r("registry.read", ADMIN, ANY),
    ("POST", "/api/v1/admin/buildings"): _r("registry.write", ADMIN, ANY),
    ("GET", "/api/v1/admin/devices/export"): _r("devices.export", ADMIN, ANY),
    ("GET", "/admin/audit"): _r("audit.read", ADMIN, ANY),
    ("POST", "/admin/users"): _r("users.create", ADMIN, ANY),
    ("POST", "/admin/users/{user_id}/disable"): _r("users.update", ADMIN, ANY),
    # --- dead letters span every community: operators only -------------------------------------
    ("GET", "/api/v1/deadletter"): _r("deadletter.read", ADMIN, ANY),
    ("GET", "/api/v1/deadletter/{dead_letter_id}"): _r("deadletter.read", ADMIN, ANY),
    # --- devices, telemetry, gateways, alarms, dashboards: staff --------------------------------
    ("GET", "/api/v1/devices"): _r("devices.list", STAFF, COMMUNITY),
    ("GET", "/api/v1/devices/{device_id}"): _r("devices.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/devices/{device_id}/telemetry"): _r("telemetry.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/devices/{device_id}/metrics"): _r("telemetry.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/devices/{device_id}/series"): _r("telemetry.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/devices/{device_id}/values"): _r("telemetry.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/devices/{device_id}/live"): _r("telemetry.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/devices/{device_id}/health"): _r("devices.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/devices/{device_id}/alarms"): _r("alarms.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/devices/{device_id}/workorders"): _r("work_orders.read", STAFF, COMMUNITY),
    # writes *and* actions (a gate's remote open, issue 19): engineers and admins only. Butlers may
    # NOT open gates remotely: a butler is on site with a card, a remote open leaves no one at the
    # gate to see who walks through, and a butler's phone is the account most often lost; an
    # elderly resident's call for help reaches the butler as a P0 order, not as a gate button.
    ("POST", "/api/v1/devices/{device_id}/commands"): _r("devices.command", STAFF, COMMUNITY),
    ("GET", "/api/v1/devices/{device_id}/commands"): _r("devices.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/devices/{device_id}/commands/{command_id}"): _r("devices.read", STAFF, COMMUNITY),
    ("POST", "/devices/{device_id}/commands"): _r("devices.command", STAFF, COMMUNITY),
    ("GET", "/api/v1/analytics/devices/{device_id}/health"): _r("devices.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/analytics/devices/{device_id}/detections"): _r("devices.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/analytics/models"): _r("analytics.models", STAFF, ANY),
    # a community's day calendar (issue 15): its staff read it, its admins set its own days
    ("GET", "/api/v1/analytics/communities/{community}/calendar"): _r("calendar.read", STAFF, COMMUNITY),
    ("PUT", "/api/v1/analytics/communities/{community}/calendar/{day}"): _r("calendar.write", ADMIN, COMMUNITY),
    ("DELETE", "/api/v1/analytics/communities/{community}/calendar/{day}"): _r("calendar.write", ADMIN, COMMUNITY),
    ("GET", "/api/v1/dashboard/summary"): _r("dashboard.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/dashboard/performance"): _r("dashboard.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/gateways"): _r("gateways.read", STAFF, COMMUNITY),
    ("POST", "/api/v1/gateways/{gateway_id}/bootstrap-tokens"): _r("gateways.provision", ADMIN, COMMUNITY),
    ("POST", "/api/v1/gateways/{gateway_id}/revoke"): _r("gateways.provision", ADMIN, COMMUNITY),
    ("GET", "/api/v1/gateways/{gateway_id}"): _r("gateways.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/alarms"): _r("alarms.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/alarms/{alarm_id}"): _r("alarms.read", STAFF, COMMUNITY),
    ("POST", "/api/v1/alarms/{alarm_id}/ack"): _r("alarms.ack", STAFF, COMMUNITY),
    ("GET", "/fleet"): _r("devices.list", STAFF, COMMUNITY),
    ("GET", "/devices/{device_id}"): _r("devices.read", STAFF, COMMUNITY),
    ("GET", "/gateways"): _r("gateways.read", STAFF, COMMUNITY),
    ("GET", "/gateways/{gateway_id}"): _r("gateways.read", STAFF, COMMUNITY),
    ("POST", "/gateways/{gateway_id}/bootstrap-token"): _r("gateways.provision", ADMIN, COMMUNITY),
    ("POST", "/gateways/{gateway_id}/revoke"): _r("gateways.provision", ADMIN, COMMUNITY),
    # configuration rollout to the edge (issue 19): versions per gateway, staged rollouts, the fleet page
    ("POST", "/api/v1/gateways/{gateway_id}/config"): _r("gateways.configure", STAFF, COMMUNITY),
    ("GET", "/api/v1/gateways/{gateway_id}/config"): _r("gateways.read", STAFF, COMMUNITY),
    ("POST", "/api/v1/config-rollouts"): _r("gateways.configure", STAFF, COMMUNITY),
    ("GET", "/api/v1/config-rollouts"): _r("gateways.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/config-rollouts/{rollout_id}"): _r("gateways.read", STAFF, COMMUNITY),
    ("POST", "/api/v1/config-rollouts/{rollout_id}/resume"): _r("gateways.configure", STAFF, COMMUNITY),
    ("POST", "/api/v1/config-rollouts/{rollout_id}/abort"): _r("gateways.configure", STAFF, COMMUNITY),
    ("GET", "/fleet/config"): _r("gateways.read", STAFF, COMMUNITY),
    ("POST", "/fleet/config/rollouts/{rollout_id}/{action}"): _r("gateways.configure", STAFF, COMMUNITY),
    ("GET", "/manager"): _r("dashboard.read", STAFF, COMMUNITY),
    # --- work orders ------------------------------------------------------------------------------
    ("GET", "/api/v1/work-orders"): _r("work_orders.list", {A, E, B, R}, COMMUNITY),
    ("POST", "/api/v1/work-orders"): _r("work_orders.open", STAFF, COMMUNITY),
    ("GET", "/api/v1/work-orders/{wo_id}"): _r("work_orders.read", {A, E, B, R, C}, ASSIGNMENT),
    ("POST", "/api/v1/work-orders/{wo_id}/transitions"): _r("work_orders.transition", FIELD, ASSIGNMENT),
    ("POST", "/api/v1/work-orders/{wo_id}/rating"): _r("work_orders.rate", {A, R}, ASSIGNMENT),
    ("POST", "/api/v1/reports"): _r("work_orders.report", {A, R}, COMMUNITY),
    ("GET", "/api/v1/inbox"): _r("inbox.read", WORKERS, COMMUNITY),
    ("GET", "/api/v1/inbox/stream"): _r("inbox.read", WORKERS, COMMUNITY),
    ("GET", "/inbox"): _r("inbox.read", WORKERS, COMMUNITY),
    ("GET", "/inbox/{work_order_id}/trail"): _r("work_orders.read", WORKERS, ASSIGNMENT),
    ("POST", "/inbox/{work_order_id}/{action}"): _r("work_orders.transition", WORKERS, ASSIGNMENT),
    ("GET", "/photos/{community}/{name}"): _r("photos.read", {A, E, B, R}, COMMUNITY),
    ("GET", "/resident"): _r("work_orders.report", {A, R}, COMMUNITY),
    ("GET", "/api/v1/resident/inbox"): _r("resident.inbox", {A, R}, ANY),
    ("GET", "/api/v1/butlers/{butler_id}/points"): _r("points.read", WORKERS, COMMUNITY),
    ("POST", "/api/v1/butlers/{butler_id}/points/adjust"): _r("points.adjust", STAFF, COMMUNITY),
    ("POST", "/api/v1/butlers/{butler_id}/points/redeem"): _r("points.redeem", STAFF, COMMUNITY),
    ("POST", "/api/v1/complaints"): _r("complaints.file", {A, E, R}, COMMUNITY),
    ("GET", "/api/v1/complaints"): _r("complaints.list", STAFF, COMMUNITY),
    ("GET", "/api/v1/complaints/mine"): _r("complaints.own", {A, R}, ANY),
    ("GET", "/api/v1/complaints/{complaint_id}"): _r("complaints.read", STAFF, COMMUNITY),
    ("POST", "/api/v1/complaints/{complaint_id}/transitions"): _r("complaints.transition", STAFF, COMMUNITY),
    # the live stream is the resident's own phone (an admin reads the inbox list instead: a stream
    # held open by a staff session would never end, and it shows them nothing of their own)
    ("GET", "/api/v1/resident/inbox/stream"): _r("resident.inbox", {R}, ANY),
    ("POST", "/resident/report"): _r("work_orders.report", {A, R}, COMMUNITY),
    ("POST", "/resident/rate/{work_order_id}"): _r("work_orders.rate", {A, R}, ASSIGNMENT),
    # --- planned maintenance (issue 17): plans are staff's; the checklist follows the order ------
    ("GET", "/api/v1/maintenance/templates"): _r("maintenance.templates", WORKERS, ANY),
    ("GET", "/api/v1/maintenance/plans"): _r("maintenance.plans", STAFF, COMMUNITY),
    ("POST", "/api/v1/maintenance/plans"): _r("maintenance.plan_create", STAFF, COMMUNITY),
    ("GET", "/api/v1/work-orders/{wo_id}/maintenance"): _r("work_orders.read", FIELD, ASSIGNMENT),
    ("POST", "/api/v1/work-orders/{wo_id}/maintenance/submit"): _r("maintenance.submit", FIELD, ASSIGNMENT),
    # --- contractors (issue 17): their company's orders only -------------------------------------
    ("GET", "/api/v1/contractor/orders"): _r("contractor.orders", {C}, ANY),
    ("POST", "/api/v1/work-orders/{wo_id}/maintenance/confirm"): _r("maintenance.confirm", STAFF, ASSIGNMENT),
    # --- inspection rounds (issue 17): routes and coverage are staff's; butlers scan ------------
    ("POST", "/api/v1/inspections/routes"): _r("inspections.route_create", STAFF, COMMUNITY),
    ("GET", "/api/v1/inspections/routes"): _r("inspections.read", WORKERS, COMMUNITY),
    ("GET", "/api/v1/inspections/qr"): _r("inspections.read", STAFF, COMMUNITY),
    ("POST", "/api/v1/inspections/scans"): _r("inspections.scan", WORKERS, COMMUNITY),
    ("GET", "/api/v1/inspections/coverage"): _r("inspections.coverage", STAFF, COMMUNITY),
    ("GET", "/maintenance/{work_order_id}"): _r("work_orders.read", FIELD, ASSIGNMENT),
    ("POST", "/maintenance/{work_order_id}"): _r("maintenance.submit", FIELD, ASSIGNMENT),
    ("GET", "/inspect"): _r("inspections.read", WORKERS, ANY),
    ("POST", "/inspect"): _r("inspections.scan", WORKERS, ANY),
    # --- manager reports (issue 17) ----------------------------------------------------------
    ("GET", "/api/v1/manager-reports"): _r("reports.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/manager-reports/csv"): _r("reports.read", STAFF, COMMUNITY),
    ("GET", "/api/v1/manager-reports/pdf"): _r("reports.read", STAFF, COMMUNITY),
    # company report: the caller's own communities (admins: all), filtered by the handler
    ("GET", "/api/v1/manager-reports/company"): _r("reports.read", STAFF, ANY),
    ("GET", "/api/v1/manager-reports/company/csv"): _r("reports.read", STAFF, ANY),
    ("GET", "/api/v1/manager-reports/company/pdf"): _r("reports.read", STAFF, ANY),
    ("GET", "/api/v1/manager-reports/targets"): _r("reports.read", STAFF, COMMUNITY),
    ("PUT", "/api/v1/manager-reports/targets"): _r("reports.targets", STAFF, COMMUNITY),
    ("GET", "/api/v1/manager-reports/subscriptions"): _r("reports.read", STAFF, ANY),
    ("POST", "/api/v1/manager-reports/subscriptions"): _r("reports.subscribe", STAFF, ANY),
    ("POST", "/api/v1/manager-reports/company/subscriptions"): _r("reports.subscribe_company", {A}, ANY),
    ("DELETE", "/api/v1/manager-reports/subscriptions/{subscription_id}"): _r("reports.subscribe", STAFF, ANY),
    ("GET", "/reports"): _r("reports.read", STAFF, COMMUNITY),
    ("GET", "/reports/company"): _r("reports.read", STAFF, ANY),
    # targets and subscriptions: the page reads; its forms write through the API rows above
    ("GET", "/reports/settings"): _r("reports.read", STAFF, COMMUNITY),
    ("POST", "/resident/reopen/{work_order_id}"): _r("work_orders.reopen_own", {A, R}, ASSIGNMENT),
    # --- issue 18: the caller's own channel; residents' complaints, volunteers' tasks and points ---
    ("GET", "/api/v1/me/channel"): _r("account.channel", EVERYONE, ANY),
    ("PUT", "/api/v1/me/channel"): _r("account.channel", EVERYONE, ANY),
    ("POST", "/me/channel"): _r("account.channel", EVERYONE, ANY),
    ("GET", "/resident/complaints"): _r("complaints.own", {A, R}, ANY),
    ("POST", "/resident/complaints"): _r("complaints.file", {A, R}, ANY),
    ("POST", "/resident/complaints/{complaint_id}/reply"): _r("complaints.reply", {A, R}, COMMUNITY),
    ("POST", "/api/v1/complaints/{complaint_id}/reply"): _r("complaints.reply", {A, R}, COMMUNITY),
    ("POST", "/api/v1/work-orders/{wo_id}/like"): _r("work_orders.like", {A, R}, ASSIGNMENT),
    ("GET", "/complaints"): _r("complaints.list", STAFF, ANY),
    ("POST", "/complaints/{complaint_id}/{action}"): _r("complaints.transition", STAFF, COMMUNITY),
    ("POST", "/points/redemptions/{redemption_id}"): _r("points.redeem", STAFF, COMMUNITY),
    ("POST", "/resident/like/{work_order_id}"): _r("work_orders.like", {A, R}, ASSIGNMENT),
    # a volunteer is a butler record of kind "volunteer": the butler subject, their own record only
    ("GET", "/volunteer/points"): _r("volunteer.points", {B}, ANY),
    ("POST", "/volunteer/points/redeem"): _r("volunteer.redeem", {B}, ANY),
    ("POST", "/volunteers/handoff/{work_order_id}"): _r("volunteer.handoff", WORKERS, ASSIGNMENT),
    ("GET", "/api/v1/points/redemptions"): _r("points.redemptions", STAFF, COMMUNITY),
    ("POST", "/api/v1/points/redemptions/{redemption_id}/decision"): _r("points.redeem", STAFF, COMMUNITY),
    # --- operations pages and contracts (issue 17): the property staff's; contractors see their orders only --
    ("GET", "/api/v1/maintenance/plans/{plan_id}"): _r("maintenance.plans", STAFF, COMMUNITY),
    ("PUT", "/api/v1/maintenance/plans/{plan_id}"): _r("maintenance.plan_edit", STAFF, COMMUNITY),
    ("GET", "/api/v1/inspections/routes/{route_id}"): _r("inspections.coverage", STAFF, COMMUNITY),
    ("PUT", "/api/v1/inspections/routes/{route_id}"): _r("inspections.route_edit", STAFF, COMMUNITY),
    ("GET", "/api/v1/contractors"): _r("contracts.read", STAFF, ANY),
    ("GET", "/api/v1/contracts"): _r("contracts.read", STAFF, COMMUNITY),
    ("POST", "/api/v1/contracts"): _r("contracts.create", STAFF, COMMUNITY),
    ("PUT", "/api/v1/contracts/{contract_id}"): _r("contracts.edit", STAFF, COMMUNITY),
    ("GET", "/ops/plans"): _r("maintenance.plans", STAFF, COMMUNITY),
    ("POST", "/ops/plans"): _r("maintenance.plan_create", STAFF, COMMUNITY),
    ("GET", "/ops/plans/{plan_id}"): _r("maintenance.plans", STAFF, COMMUNITY),
    ("POST", "/ops/plans/{plan_id}"): _r("maintenance.plan_edit", STAFF, COMMUNITY),
    ("GET", "/ops/confirm/{work_order_id}"): _r("work_orders.read", STAFF, ASSIGNMENT),
    ("POST", "/ops/confirm/{work_order_id}"): _r("maintenance.confirm", STAFF, ASSIGNMENT),
    ("GET", "/ops/routes"): _r("inspections.coverage", STAFF, COMMUNITY),
    ("POST", "/ops/routes"): _r("inspections.route_create", STAFF, COMMUNITY),
    ("GET", "/ops/routes/{route_id}"): _r("inspections.coverage", STAFF, COMMUNITY),
    ("POST", "/ops/routes/{route_id}"): _r("inspections.route_edit", STAFF, COMMUNITY),
    ("GET", "/ops/routes/{route_id}/qr"): _r("inspections.read", STAFF, COMMUNITY),
    ("GET", "/ops/contracts"): _r("contracts.read", STAFF, COMMUNITY),
    ("POST", "/ops/contracts"): _r("contracts.create", STAFF, COMMUNITY),
    ("POST", "/ops/contracts/{contract_id}"): _r("contracts.edit", STAFF, COMMUNITY),
    # --- self-service administration (issue 19): admins change, the community's engineers read ----
    ("GET", "/api/v1/admin/butlers"): _r("butlers.read", STAFF, COMMUNITY),
    ("POST", "/api/v1/admin/butlers"): _r("butlers.write", ADMIN, ANY),
    ("PATCH", "/api/v1/admin/butlers/{butler_id}"): _r("butlers.write", ADMIN, COMMUNITY),
    ("PUT", "/api/v1/admin/butlers/{butler_id}/roster"): _r("rosters.write", ADMIN, COMMUNITY),
    # a butler's hire date and certificates (issue 18): the community's engineers (managers) too
    ("GET", "/api/v1/admin/butlers/{butler_id}/profile"): _r("butlers.read", STAFF, COMMUNITY),
    ("PUT", "/api/v1/admin/butlers/{butler_id}/profile"): _r("butlers.profile", STAFF, COMMUNITY),
    ("GET", "/api/v1/admin/contractors"): _r("contractors.read", ADMIN, ANY),
    ("POST", "/api/v1/admin/contractors"): _r("contractors.write", ADMIN, ANY),
    ("GET", "/api/v1/admin/communities/{community}/policy"): _r("policies.read", STAFF, COMMUNITY),
    ("PUT", "/api/v1/admin/communities/{community}/policy"): _r("policies.write", ADMIN, COMMUNITY),
    ("DELETE", "/api/v1/admin/communities/{community}/policy"): _r("policies.write", ADMIN, COMMUNITY),
    # a community's own wording of notification messages (issue 18)
    ("GET", "/api/v1/admin/communities/{community}/wording"): _r("policies.read", STAFF, COMMUNITY),
    ("PUT", "/api/v1/admin/communities/{community}/wording"): _r("policies.write", ADMIN, COMMUNITY),
    ("GET", "/admin/estate"): _r("registry.read", ADMIN, ANY),
    ("GET", "/admin/devices"): _r("devices.import", ADMIN, ANY),
    ("GET", "/admin/people"): _r("butlers.read", STAFF, COMMUNITY),
    ("GET", "/admin/policies"): _r("policies.read", STAFF, COMMUNITY),
    ("GET", "/admin/calendar"): _r("calendar.read", STAFF, COMMUNITY),
}

#: work-order action → subjects that may take it (on an order the route's scope lets them reach).
#: Cancelling — P0 included — and closing or reopening are decisions of the staff, not of the
#: butler doing the work; ``auto_close`` is the system's alone.
TRANSITIONS: Final[dict[str, frozenset[Subject]]] = {
    "assign": WORKERS, "reassign": WORKERS,
    "accept": FIELD, "reject": FIELD, "depart": FIELD, "arrive": FIELD,
    "hold": FIELD, "resume": FIELD, "resolve": FIELD,
    "reopen": STAFF, "close": STAFF, "cancel": STAFF,
    "auto_close": NOBODY,
}

#: routes the framework adds itself (OpenAPI and its viewers), public and not in the table
FRAMEWORK_ROUTES: Final = frozenset({"/api/openapi.json", "/api/docs", "/docs/oauth2-redirect", "/redoc"})


def subject_of(role: Role, has_butler_record: bool) -> Subject:
    if role is Role.butler:
        return Subject.butler if has_butler_record else Subject.butler_unlinked
    return Subject(role.value)


def rule_for(method: str, path: str) -> Rule | None:
    return POLICY.get(("GET" if method == "HEAD" else method, path))


def may_transition(subject: Subject, action: str) -> bool:
    return subject in TRANSITIONS.get(action, NOBODY)


def missing_rules(routes: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (method, path) pairs of ``routes`` that have no row (framework routes excepted)."""
    return sorted({(m, p) for m, p in routes if p not in FRAMEWORK_ROUTES and rule_for(m, p) is None})
