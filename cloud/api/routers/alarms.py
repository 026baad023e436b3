"""REST for alarms: list (filters, paging), detail with trail, acknowledge. Staff only
(admin/engineer); tenant-scoped (another community's alarm is a 404)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import ClockDep, PoolDep, StaffUser, ensure_community_param, ensure_visible, scope_params
from cloud.api.routers.workorders import raise_http
from cloud.http.i18n import pick_lang
from cloud.ops.alarms.lifecycle import acknowledge
from cloud.ops.model.alarms import status
from cloud.ops.model.errors import WorkOrderError
from cloud.ops.workorders import queries
from cloud.ops.workorders.trail import TrailEntry, alarm_history
from cloud.queries.history import rule_titles
from rules.model import Title
from rules.ruleset import MESSAGE_ZH_LABEL

router = APIRouter(prefix="/api/v1/alarms", tags=["alarms"])


class AlarmOut(BaseModel):
    id: int
    community: str
    gateway: str | None
    device: str
    rule: str
    source: str
    severity: str
    device_kind: str | None
    building: str | None
    active: bool
    acknowledged: bool
    status: str
    message: str
    """In English (what the edge rendered, or the cloud wrote)."""
    message_zh: str | None = None
    """In Chinese: the ``message_zh`` label (every shipped rule and every cloud-born alarm has one)."""
    value: Any
    labels: dict[str, Any]
    raised_at: datetime
    last_raised_at: datetime
    cleared_at: datetime | None
    acked_at: datetime | None
    acked_by: str | None
    raise_count: int
    flaps: int
    inhibited: bool = False
    """Grouped under its gateway's offline alarm (``inhibited_by``): recorded, no order or notification of its own."""
    inhibited_by: int | None = None
    """The gateway alarm that inhibits (or inhibited) it; kept as history after the alarm is promoted."""
    rule_title: Title | None = None
    """The rule's name in Chinese and English (the shipped rules all have one): ``message`` is what the
    edge rendered, in English for most rules; pages and clients show the title in the reader's language."""
    work_order_id: int | None = None


class AlarmPage(BaseModel):
    items: list[AlarmOut]
    total: int
    limit: int
    offset: int


class AlarmDetail(AlarmOut):
    trail: list[TrailEntry] = Field(description="oldest first; names and zh/en words (?lang=, Chinese default)")


def _out(row: dict[str, Any]) -> dict[str, Any]:
    return row | {"status": status(row["active"], row["acknowledged"]), "rule_title": rule_titles().get(row["rule"]),
                  "message_zh": (row["labels"] or {}).get(MESSAGE_ZH_LABEL)}


@router.get("", response_model=AlarmPage)
async def list_alarms(
    user: StaffUser, pool: PoolDep, community: str | None = None, device: str | None = None,
    rule: str | None = None, active: bool | None = None, acknowledged: bool | None = None,
    severity: Annotated[list[str] | None, Query()] = None,
    source: Literal["edge", "fleet", "system"] | None = None, history: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50, offset: Annotated[int, Query(ge=0)] = 0,
) -> dict[str, Any]:
    """Current alarms (active first, newest first); ``history=true`` includes archived episodes."""
    ensure_community_param(user, community)
    async with pool.connection() as conn:
        page = await queries.list_alarms(conn, scope_params(user), community=community, device=device, rule=rule,
                                         active=active, acknowledged=acknowledged, severity=severity, source=source,
                                         current_only=not history, limit=limit, offset=offset)
    return {"items": [_out(a) for a in page.items], "total": page.total, "limit": page.limit, "offset": page.offset}


@router.get("/{alarm_id}", response_model=AlarmDetail)
async def get_alarm(request: Request, alarm_id: int, user: StaffUser, pool: PoolDep) -> dict[str, Any]:
    async with pool.connection() as conn:
        alarm = await queries.get_alarm(conn, alarm_id)
        if alarm is None:
            raise HTTPException(404, "not found")
        ensure_visible(user, alarm["community"])
        trail = await alarm_history(conn, alarm_id, pick_lang(request, user.lang))
    return _out(alarm) | {"trail": trail}


class AckIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=2000)


@router.post("/{alarm_id}/ack", response_model=AlarmOut)
async def ack(alarm_id: int, user: StaffUser, pool: PoolDep, clock: ClockDep,
              body: AckIn | None = None) -> dict[str, Any]:
    """Acknowledge (idempotent)."""
    async with pool.connection() as conn:
        alarm = await queries.get_alarm(conn, alarm_id)
        if alarm is None:
            raise HTTPException(404, "not found")
        ensure_visible(user, alarm["community"])
        actor = await queries.actor_for(conn, user.id, user.name, user.role.value)
        try:
            updated = await acknowledge(conn, alarm_id, actor, clock.now(), body.note if body else "")
        except WorkOrderError as exc:
            raise_http(exc)
    return _out(updated)
