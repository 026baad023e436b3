"""The butler inbox's live side: an in-process pub/sub per butler, fed by PostgreSQL LISTEN.

Every inbox notification is committed with ``pg_notify('guanjia_inbox', …)``; each service
process runs one :class:`InboxHub` that LISTENs and fans the message out to the SSE streams of
that butler connected to *this* process. So any number of API processes serve live inboxes, and
whichever process opened the work order, the butler's phone hears about it.

Each subscriber has a bounded queue (``QUEUE_SIZE``). When a slow client lets it fill, the oldest
message is dropped and counted (``dropped``); the client recovers by reconnecting with
``Last-Event-ID``, which replays from the ``notifications`` table (:func:`backlog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import AsyncIterator
from types import TracebackType
from typing import Any, Final

import orjson
from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.ops.notify.listen import listen_forever
from cloud.ops.notify.outbox import INBOX_CHANNEL, RESIDENT_CHANNEL

log = logging.getLogger(__name__)

QUEUE_SIZE: Final = 256


class InboxHub:
    """``async with InboxHub(url) as hub: async with hub.subscribe(butler_id) as queue: …``"""

    def __init__(self, database_url: str | None, *, channel: str = INBOX_CHANNEL, key: str = "butler") -> None:
        """``channel`` is the NOTIFY channel to LISTEN on and ``key`` the message field naming the
        subscriber: butlers' inboxes by default, residents' with :func:`resident_hub`."""
        self.database_url = database_url
        self.channel = channel
        self.key = key
        self._subscribers: dict[int, set[asyncio.Queue[dict[str, Any]]]] = defaultdict(set)
        self._group: asyncio.TaskGroup | None = None
        self._listener: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.delivered = 0
        self.dropped = 0

    @property
    def subscribers(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def publish(self, message: dict[str, Any]) -> int:
        """Hand ``message`` to every local subscriber of ``message[self.key]``; return how many."""
        queues = self._subscribers.get(int(message.get(self.key, -1)), set())
        for queue in queues:
            if queue.full():
                with contextlib.suppress(asyncio.QueueEmpty):
                    queue.get_nowait()
                self.dropped += 1
            queue.put_nowait(message)
            self.delivered += 1
        return len(queues)

    def _on_notify(self, _channel: str, payload: str) -> None:
        try:
            message = orjson.loads(payload)
        except orjson.JSONDecodeError:
            log.warning("inbox: ignoring a malformed notification payload")
            return
        if isinstance(message, dict):
            self.publish(message)

    @contextlib.asynccontextmanager
    async def subscribe(self, butler_id: int) -> AsyncIterator[asyncio.Queue[dict[str, Any]]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(QUEUE_SIZE)
        self._subscribers[butler_id].add(queue)
        try:
            yield queue
        finally:
            self._subscribers[butler_id].discard(queue)
            if not self._subscribers[butler_id]:
                del self._subscribers[butler_id]

    def start_detached(self) -> None:
        """Start listening without an ``async with`` (the API app has no lifespan to own it under
        uvicorn ``lifespan="off"``); the task ends with the event loop or :meth:`stop_detached`."""
        if self._listener is None and self.database_url:
            self._listener = asyncio.get_running_loop().create_task(
                listen_forever(self.database_url, [self.channel], self._on_notify, self.connected.set),
                name="inbox-listen")

    def stop_detached(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            self._listener = None

    async def __aenter__(self) -> InboxHub:
        if self.database_url:
            self._group = asyncio.TaskGroup()
            await self._group.__aenter__()
            self._listener = self._group.create_task(
                listen_forever(self.database_url, [self.channel], self._on_notify, self.connected.set),
                name="inbox-listen")
        else:
            self.connected.set()
        return self

    async def __aexit__(self, et: type[BaseException] | None, e: BaseException | None,
                        tb: TracebackType | None) -> None:
        if self._group is not None:
            if self._listener is not None:
                self._listener.cancel()
            await self._group.__aexit__(None, None, None)
            self._group = None


def resident_hub(database_url: str | None) -> InboxHub:
    """The residents' hub: messages of :data:`RESIDENT_CHANNEL`, keyed by the resident's user id."""
    return InboxHub(database_url, channel=RESIDENT_CHANNEL, key="user")


async def resident_backlog(conn: AsyncConnection[Any], user_id: int, after_id: int,
                           limit: int = 100) -> list[dict[str, Any]]:
    """A resident's inbox newer than ``after_id``, oldest first (replay and the page's list)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT id, user_id AS user, event, payload, created_at AS at FROM notifications
               WHERE channel = 'inbox' AND user_id = %s AND id > %s ORDER BY id LIMIT %s""",
            (user_id, after_id, limit),
        )
        return await cur.fetchall()


async def resident_recent(conn: AsyncConnection[Any], user_id: int, limit: int = 30) -> list[dict[str, Any]]:
    """A resident's newest messages, newest first (the phone page's list before the stream)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT id, user_id AS user, event, payload, created_at AS at FROM notifications
               WHERE channel = 'inbox' AND user_id = %s ORDER BY id DESC LIMIT %s""", (user_id, limit))
        return await cur.fetchall()


async def backlog(conn: AsyncConnection[Any], butler_id: int, after_id: int, limit: int = 100) -> list[dict[str, Any]]:
    """Inbox messages of ``butler_id`` newer than ``after_id`` (SSE ``Last-Event-ID`` replay)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT id, butler_id AS butler, event, subject, payload FROM notifications
               WHERE channel = 'inbox' AND butler_id = %s AND id > %s ORDER BY id LIMIT %s""",
            (butler_id, after_id, limit),
        )
        return await cur.fetchall()
