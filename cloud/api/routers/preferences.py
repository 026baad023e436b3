"""``/api/v1/me/channel``: the signed-in user's chosen channel (residents and staff alike).

``GET`` answers ``{"channel": "inapp" | "sms" | "email" | "messenger", "target": …}`` (the
owner sees their own number or address unmasked: it is theirs); ``PUT`` validates and stores it
(:mod:`cloud.ops.notify.preferences`), answering 422 ``invalid`` with a message that
names the field (``target: not a mainland mobile number …``) for a bad value.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, status
from pydantic import BaseModel, ConfigDict, Field

from cloud.api.deps import CurrentUser, PoolDep
from cloud.ops.model.errors import NotFound, WorkOrderError
from cloud.ops.notify import preferences
from cloud.ops.notify.preferences import ChannelChoice

router = APIRouter(prefix="/api/v1/me", tags=["account"])


class ChannelIO(BaseModel):
    model_config = ConfigDict(extra="forbid")

    channel: ChannelChoice
    target: Annotated[str | None, Field(max_length=1000)] = None


@router.get("/channel", response_model=ChannelIO, summary="Where my notifications go besides the in-app inbox")
async def read_channel(user: CurrentUser, pool: PoolDep) -> ChannelIO:
    async with pool.connection() as conn:
        try:
            found = await preferences.get(conn, user.id)
        except NotFound as exc:
            raise HTTPException(status.HTTP_404_NOT_FOUND, {"code": exc.code, "message": str(exc)}) from exc
    return ChannelIO.model_validate({"channel": found.channel, "target": found.target})


@router.put("/channel", response_model=ChannelIO, summary="Choose where my notifications go")
async def choose_channel(body: ChannelIO, user: CurrentUser, pool: PoolDep) -> ChannelIO:
    async with pool.connection() as conn:
        try:
            chosen = await preferences.choose(conn, user.id, body.channel, body.target)
        except WorkOrderError as exc:
            code = status.HTTP_404_NOT_FOUND if isinstance(exc, NotFound) else 422
            raise HTTPException(code, {"code": exc.code, "message": str(exc)}) from exc
    return ChannelIO.model_validate({"channel": chosen.channel, "target": chosen.target})
