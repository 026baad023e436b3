"""The butler inbox: recent messages, and a live stream over server-sent events.

``GET /api/v1/inbox/stream`` — one SSE stream per butler. Each message is an event with
``id`` = notification id, ``event`` = e.g. ``work_order.assigned``, ``data`` = JSON. A client that
reconnects with ``Last-Event-ID`` first gets what it missed (replayed from ``notifications``),
then live messages; the first event, ``ready``, says the subscription is live. Staff may watch a
butler's stream with ``?butler_id=``. Ids are unique but not strictly increasing on the wire
(concurrent commits), so clients de-duplicate by id; the replay reaches a little below the
client's last id to catch late commits.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Header, HTTPException, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from cloud.api.deps import ButlerUser, PoolDep, ensure_visible
from cloud.auth.roles import Role
from cloud.auth.users import User
from cloud.ops.delivery.hub import InboxHub, backlog
from cloud.ops.workorders import queries
from cloud.queries.butlers import butler_community

router = APIRouter(prefix="/api/v1/inbox", tags=["inbox"])

KEEPALIVE_S = 15
REPLAY_OVERLAP = 50


def hub_of(request: Request) -> InboxHub:
    """The process's hub, started on first use (one LISTEN connection per process)."""
    hub: InboxHub | None = getattr(request.app.state, "inbox_hub", None)
    if hub is None:
        settings = request.app.state.settings
        hub = InboxHub(settings.database_url)
        hub.start_detached()
        request.app.state.inbox_hub = hub
        metrics = getattr(request.app.state, "metrics", None)
        if metrics is not None:
            live = hub
            metrics.gauge("guanjia_inbox_subscribers", "live SSE inbox streams in this process",
                          lambda: float(live.subscribers))
            metrics.gauge("guanjia_inbox_delivered", "inbox messages handed to SSE streams",
                          lambda: float(live.delivered))
            metrics.gauge("guanjia_inbox_dropped", "inbox messages dropped from full per-stream queues",
                          lambda: float(live.dropped))
    return hub


async def _butler_id(conn: Any, user: User, requested: int | None) -> int:
    actor = await queries.actor_for(conn, user.id, user.name, user.role.value)
    if requested is None or requested == actor.butler_id:
        if actor.butler_id is None:
            raise HTTPException(404, "no butler record for this user")
        return actor.butler_id
    if user.role is Role.butler:
        raise HTTPException(404, "not found")
    ensure_visible(user, await butler_community(conn, requested))
    return requested


def _event(message: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(data=orjson.dumps(message, default=str).decode(), id=str(message["id"]),
                           event=str(message.get("event", "message")))


@router.get("")
async def inbox(user: ButlerUser, pool: PoolDep, butler_id: int | None = None,
                after: Annotated[int, Query(ge=0)] = 0,
                limit: Annotated[int, Query(ge=1, le=500)] = 100) -> dict[str, Any]:
    """Inbox messages newer than ``after`` (oldest first), for polling clients."""
    async with pool.connection() as conn:
        bid = await _butler_id(conn, user, butler_id)
        items = await backlog(conn, bid, after, limit)
    return {"butler_id": bid, "items": items}


@router.get("/stream")
async def stream(request: Request, user: ButlerUser, pool: PoolDep, butler_id: int | None = None,
                 last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None) -> EventSourceResponse:
    async with pool.connection() as conn:
        bid = await _butler_id(conn, user, butler_id)
    hub = hub_of(request)
    replay = last_event_id is not None
    try:
        last = int(last_event_id or 0)
    except ValueError:
        last, replay = 0, False
    # ids are allocated before commit, so a message with a lower id may commit after a higher
    # one; replaying a little below the client's last id catches those (duplicates are harmless:
    # clients key messages by id)
    last = max(0, last - REPLAY_OVERLAP)

    async def events() -> AsyncIterator[ServerSentEvent]:
        replayed: set[int] = set()
        async with hub.subscribe(bid) as queue:
            await asyncio.wait_for(hub.connected.wait(), 10)
            if replay:
                async with pool.connection() as conn:
                    for message in await backlog(conn, bid, last, 500):
                        replayed.add(int(message["id"]))
                        yield _event(message)
            yield ServerSentEvent(data=orjson.dumps({"butler_id": bid}).decode(), event="ready")
            while True:
                try:
                    message = await asyncio.wait_for(queue.get(), KEEPALIVE_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    continue
                # ids are not delivered in order (concurrent commits): skip only what the replay sent
                if int(message.get("id", 0)) in replayed:
                    continue
                yield _event(message)

    return EventSourceResponse(events(), ping=KEEPALIVE_S)
