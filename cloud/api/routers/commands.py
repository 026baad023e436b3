"""``/api/v1/devices/{device_id}/commands``: remote commands to a device, and its command trail.

Admins and engineers (the policy table, :mod:`cloud.auth.policy`); the device's community must be
the caller's (404 otherwise). A command the cloud refuses (not writable, out of range, unknown
enum name …) is answered **422** ``command_refused`` *and* stored as ``rejected``: the trail shows
attempts too. An accepted one is **202**: it is queued, and the reply comes later — poll
``GET …/commands/{command_id}`` (``status``: pending → sent → done | refused | timed_out, or expired).

An action (``{"action": "open"}``) is a command of the device profile's ``commands:`` (a gate's
remote open), forwarded by the edge to the device, which answers; the policy row
``devices.command`` decides who may send one, writes and actions alike (butlers may not open
gates: see :mod:`cloud.auth.policy`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Query, status
from pydantic import BaseModel, Field, model_validator

from cloud.api.deps import ClockDep, PoolDep, StaffUser
from cloud.ops.fleet.commands import DEFAULT_EXPIRY, MAX_EXPIRY, submit
from cloud.ops.fleet.repo import CommandRow, device_commands, load_command

router = APIRouter(prefix="/api/v1/devices", tags=["commands"])

CommandId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9_.:-]{1,64}$")]


class CommandIn(BaseModel):
    """A write (``point`` and ``value``) or an action of the device profile (``action``, e.g. a gate's
    ``open``): exactly one of the two."""

    point: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$",
                              examples=["pressure_setpoint"])
    value: bool | int | float | Annotated[str, Field(max_length=64)] | None = Field(
        None, description="a number, a boolean (coils), or an enum label", examples=[3.2])
    action: str | None = Field(None, min_length=1, max_length=64, pattern=r"^[a-z0-9_]+$", examples=["open"],
                               description="a command of the device profile (commands:), performed by the device")
    expires_in_s: float = Field(DEFAULT_EXPIRY.total_seconds(), ge=1, le=MAX_EXPIRY.total_seconds(),
                                description="not sent (and refused by the edge) after this long")

    @model_validator(mode="after")
    def _one_kind(self) -> CommandIn:
        partial = (self.point is None) != (self.value is None)
        if partial or (self.point is not None) == (self.action is not None):
            raise ValueError("send either point and value (a write) or action (e.g. open), not both")
        return self


class CommandOut(BaseModel):
    command_id: str
    device_id: int | None
    device: str
    community: str
    gateway: str | None
    kind: str = Field(description="write (point set to value) or action (point names the action, value null)")
    point: str
    value: bool | int | float | str | None
    issued_by: str
    status: str = Field(description="rejected | pending | sent | done | refused | timed_out | expired")
    reason: str | None = Field(description="why it was refused, timed out or expired (edge reason codes)")
    detail: str
    created_at: dt.datetime
    expires_at: dt.datetime
    sent_at: dt.datetime | None
    finished_at: dt.datetime | None
    late_reply: bool = Field(description="the reply came after the cloud had marked it timed_out")

    @classmethod
    def of(cls, r: CommandRow) -> CommandOut:
        return cls(command_id=r.command_id, device_id=r.device_id, device=r.device, community=r.community,
                   gateway=r.gateway, kind=r.kind, point=r.point, value=r.value, issued_by=r.issued_by, status=r.status,
                   reason=r.reason, detail=r.detail, created_at=r.created_at, expires_at=r.expires_at,
                   sent_at=r.sent_at, finished_at=r.finished_at, late_reply=r.late_reply)


@router.post("/{device_id}/commands", response_model=CommandOut, status_code=status.HTTP_202_ACCEPTED,
             summary="Send a command (a write, or an action such as a gate's open) to the device through its gateway")
async def send_command(device_id: int, body: CommandIn, pool: PoolDep, user: StaffUser, clock: ClockDep) -> CommandOut:
    async with pool.connection() as conn:
        row = await submit(conn, device_id=device_id, point=body.action or body.point or "", value=body.value,
                           issued_by=user.username, now=clock.now(), expires_in=dt.timedelta(seconds=body.expires_in_s),
                           action=body.action is not None)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "device not found")
    out = CommandOut.of(row)
    if row.status == "rejected":
        raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, {
            "code": "command_refused", "message": f"{row.reason}: {row.detail}", "detail": out.model_dump(mode="json")})
    return out


@router.get("/{device_id}/commands", response_model=list[CommandOut], summary="The device's commands, newest first")
async def list_commands(device_id: int, pool: PoolDep, user: StaffUser,
                        limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[CommandOut]:
    async with pool.connection() as conn:
        rows = await device_commands(conn, device_id, limit)
    return [CommandOut.of(r) for r in rows]


@router.get("/{device_id}/commands/{command_id}", response_model=CommandOut, summary="One command and its result")
async def get_command(device_id: int, command_id: CommandId, pool: PoolDep, user: StaffUser) -> CommandOut:
    async with pool.connection() as conn:
        row = await load_command(conn, device_id, command_id)
    if row is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "command not found")
    return CommandOut.of(row)
