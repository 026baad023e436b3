"""The read model of planned maintenance, one for the API and the staff pages: a plan with each
device's last completion, next due date, interval and why (condition-based reason), the lift
compliance flag; a plan's history (completed orders with checklist, readings, photos and both
signatures); the contracts of a community with the holder's measured compliance.

Why pydantic models here, below both ``cloud.api`` and ``cloud.web``: the API returns them as its
schema and the pages render the very same objects, so a field cannot exist on one side only.
Times are aware datetimes in the community's zone (the page prints them as they are).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from psycopg import AsyncConnection
from pydantic import BaseModel

from cloud.ops.maintenance import contracts, repo
from cloud.ops.maintenance.scheduler import DeviceStatus, plan_status
from cloud.ops.maintenance.templates import Catalog

#: the window of a contract's measured compliance on its page and in the API
COMPLIANCE_WINDOW = timedelta(days=30)


class PlanOut(BaseModel):
    id: int
    community: str
    scope: str
    target: str
    template: str
    template_name: dict[str, str]
    starts_on: date
    interval_days: int | None
    lead_days: int | None
    condition_based: bool
    assignee_id: int | None
    active: bool
    timezone: str
    devices: list[DeviceStatus]

    @property
    def next_due(self) -> date | None:
        return min((d.next_due for d in self.devices), default=None)

    @property
    def noncompliant(self) -> list[str]:
        return [d.device for d in self.devices if d.compliant is False]


async def plan_view(conn: AsyncConnection[Any], catalog: Catalog, plan: repo.Plan, now: datetime) -> PlanOut:
    devices = await plan_status(conn, catalog, plan, now)
    return PlanOut(id=plan.id, community=plan.community, scope=plan.scope, target=plan.target, template=plan.template,
                   template_name=catalog.get(plan.template).name.model_dump(), starts_on=plan.starts_on,
                   interval_days=plan.interval_days, lead_days=plan.lead_days, condition_based=plan.condition_based,
                   assignee_id=plan.assignee_id, active=plan.active, timezone=plan.timezone, devices=devices)


class ChecklistEntryOut(BaseModel):
    id: str
    text: str = ""
    ok: bool | None = None
    value: float | None = None
    unit: str = ""
    photo: str | None = None
    note: str = ""


class PlannedOrderOut(BaseModel):
    work_order_id: int
    device: str
    due_on: date
    interval_days: int
    interval_reason: str
    state: str
    work_order_state: str
    checklist: list[ChecklistEntryOut]
    maintainer: str | None
    """The actor label (``butler:7``) as the trail stores it; ``maintainer_name`` is for people."""
    maintainer_name: str | None
    maintainer_signature: str | None
    submitted_at: datetime | None
    confirmed_by: str | None
    confirmed_by_name: str | None
    staff_signature: str | None
    completed_at: datetime | None


class PlanHistoryOut(BaseModel):
    plan: PlanOut
    orders: list[PlannedOrderOut]


async def plan_history(conn: AsyncConnection[Any], catalog: Catalog, plan_id: int, now: datetime) -> PlanHistoryOut:
    """The plan with its planned orders, newest first: completed ones carry the checklist (each
    item's result, reading and photo) and both drawn signatures as PNG data URLs."""
    plan = await repo.get_plan(conn, plan_id)
    zone = plan.zone

    def local(moment: datetime | None) -> datetime | None:
        return moment.astimezone(zone) if moment is not None else None

    rows = await repo.plan_orders(conn, plan_id)
    names = await repo.actor_names(conn, {r[k] for r in rows for k in ("maintainer", "confirmed_by") if r[k]})
    orders = [PlannedOrderOut(
        work_order_id=o["work_order_id"], device=o["device"], due_on=o["due_on"], interval_days=o["interval_days"],
        interval_reason=o["interval_reason"], state=o["state"], work_order_state=o["work_order_state"],
        checklist=[ChecklistEntryOut.model_validate(c) for c in o["checklist"]], maintainer=o["maintainer"],
        maintainer_name=names.get(o["maintainer"] or ""), maintainer_signature=o["maintainer_signature"],
        submitted_at=local(o["submitted_at"]), confirmed_by=o["confirmed_by"],
        confirmed_by_name=names.get(o["confirmed_by"] or ""), staff_signature=o["staff_signature"],
        completed_at=local(o["completed_at"]))
        for o in rows]
    return PlanHistoryOut(plan=await plan_view(conn, catalog, plan, now), orders=orders)


class ContractOut(contracts.Contract):
    valid: bool
    """In force on the community's local date of the request."""
    window_days: int
    orders: int
    on_site_ratio: float | None
    resolve_ratio: float | None


async def contract_views(conn: AsyncConnection[Any], community: str, now: datetime) -> list[ContractOut]:
    """The community's contracts with the holder's compliance over the last 30 days up to ``now``
    (valid: on the community's local date of ``now``)."""
    today = now.astimezone(await contracts.community_zone(conn, community)).date()
    measured = {c.contract_id: c for c in await contracts.compliance(conn, community, now - COMPLIANCE_WINDOW, now)}
    out: list[ContractOut] = []
    for k in await contracts.contracts(conn, community):
        m = measured.get(k.id)
        out.append(ContractOut(
            **k.model_dump(), valid=k.valid_on(today), window_days=COMPLIANCE_WINDOW.days, orders=m.orders if m else 0,
            on_site_ratio=m.on_site_ratio if m else None, resolve_ratio=m.resolve_ratio if m else None))
    return out
