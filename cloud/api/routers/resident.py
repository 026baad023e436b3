"""The resident's inbox: every step of their reports' work orders, and a live stream (SSE).

``GET /api/v1/resident/inbox?after=`` lists messages (oldest first); ``GET
/api/v1/resident/inbox/stream`` streams them as they commit (``event`` = ``resident.<step>``,
``id`` = notification id, ``Last-Event-ID`` replays what a reconnecting phone missed; the first
event, ``ready``, says the subscription is live). Each message carries ``text``, the sentence in
the reader's language (``?lang=``, cookie, profile, ``Accept-Language``; Chinese by default) and
``at`` in the communities' zone (:mod:`cloud.http.residents`, shared with the phone page).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from cloud.api.deps import PoolDep, ResidentUser
from cloud.auth.users import User
from cloud.http.i18n import pick_lang
from cloud.http.residents import present
from cloud.ops.delivery.hub import InboxHub, resident_backlog, resident_hub

router = APIRouter(prefix="/api/v1/resident", tags=["resident"])

KEEPALIVE_S = 15
REPLAY_OVERLAP = 50


def hub_of(request: Request) -> InboxHub:
    """The process's residents' hub, started on first use (one LISTEN connection per process)."""
    hub: InboxHub | None = getattr(request.app.state, "resident_hub", None)
    if hub is None:
        hub = resident_hub(request.app.state.settings.database_url)
        hub.start_detached()
        request.app.state.resident_hub = hub
    return hub


def _lang(request: Request, user: User) -> str:
    return pick_lang(request, user.lang)


@router.get("/inbox")
async def inbox(request: Request, user: ResidentUser, pool: PoolDep,
                after: Annotated[int, Query(ge=0, lt=2**63)] = 0,
                limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    """The resident's messages newer than ``after``, oldest first."""
    lang = _lang(request, user)
    async with pool.connection() as conn:
        rows = await resident_backlog(conn, user.id, after, limit)
    return {"items": [present(lang, r) for r in rows]}


@router.get("/inbox/stream")
async def stream(request: Request, user: ResidentUser, pool: PoolDep,
                 last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None) -> EventSourceResponse:
    hub = hub_of(request)
    lang = _lang(request, user)
    try:
        last = max(0, min(int(last_event_id or 0), 2**63 - 1) - REPLAY_OVERLAP)
    except ValueError:
        last = 0
    replay = bool(last_event_id) and last >= 0

    def event(message: dict[str, Any]) -> ServerSentEvent:
        return ServerSentEvent(data=orjson.dumps(present(lang, message)).decode(), id=str(message["id"]),
                               event=str(message.get("event", "message")))

    async def events() -> AsyncIterator[ServerSentEvent]:
        replayed: set[int] = set()
        async with hub.subscribe(user.id) as queue:
            await asyncio.wait_for(hub.connected.wait(), 10)
            if replay:
                async with pool.connection() as conn:
                    for message in await resident_backlog(conn, user.id, last, 500):
                        replayed.add(int(message["id"]))
                        yield event(message)
            yield ServerSentEvent(data="{}", event="ready")
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    continue
                if int(message.get("id", 0)) not in replayed:
                    yield event(message)

    return EventSourceResponse(events(), ping=KEEPALIVE_S)
