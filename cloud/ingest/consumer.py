"""MQTT v5 shared-subscription consumer with acknowledgements after commit, on the event loop.

Why not paho (issue 21): paho's network thread cost ~140 µs per message on the bench machine —
its per-packet Python parsing, ``MQTTMessage`` objects, locks, callbacks and the hand-off of
every message to the event loop — 45 % of a worker whose budget is ~100 µs a message. aiomqtt
wraps paho (and does not expose manual acks); gmqtt and amqtt also parse and call back per
message and acknowledge before our commit. So the consumer speaks the protocol itself
(:mod:`cloud.ingest.packets`, :mod:`cloud.ingest.mqtt`): ``data_received`` parses every complete
packet of a chunk in one pass, stamps the whole chunk with one clock read, and puts the messages
in the inbox; the PUBACKs of a committed batch go out in one write (:meth:`MqttConsumer.ack_many`).

Guarantees (unchanged from the paho consumer):

* **Backpressure is the broker's**: CONNECT carries ``Receive Maximum`` = ``receive_maximum``,
  so the broker never has more than that many unacknowledged QoS 1 messages out to this worker;
  the inbox is therefore bounded by it (plus, briefly after a reconnect, the previous
  connection's messages, whose acks are dropped). When the database is slow or down, acks stop,
  the broker stops sending and messages wait in the broker.
* **Persistent session**: ``clean_start=False``, a session expiry of :data:`SESSION_EXPIRY_S` and
  a stable client id — a worker that crashes and restarts under the same id gets its
  unacknowledged messages again.
* **Acks after commit only, and only for the current connection**: every received message
  carries the connection ``generation``; acks of an older generation are dropped because the
  broker redelivers those messages on the new connection anyway.
* **Reconnect** with capped, jittered backoff (:class:`guanjia.core.backoff.Backoff`, 1 s … 30 s);
  every failure is logged with the broker's reason (bad password, not authorized, TLS) and kept
  in :attr:`MqttConsumer.last_error` (a :class:`~cloud.runtime.errors.BrokerError`).
* **Keep-alive**: a PINGREQ every half keep-alive; a connection that received nothing for 1.5
  keep-alives is dropped and re-established.
* **Outgoing storage confirmations** (QoS 1) have their own connection (clean, no subscriptions:
  their PUBACKs must not wait behind the stream, see :meth:`MqttConsumer._confirm_session`) and
  their own bound, :data:`MAX_OUTSTANDING_PUBLISHES` accepted and not yet PUBACKed: past it
  :meth:`MqttConsumer.publish` says FULL, and DOWN while that connection is down — never a
  silent drop; the caller (:class:`cloud.ingest.confirm.ConfirmQueue`) keeps
  those seqs pending. Accepted ones survive a reconnect: they are sent again (DUP) until PUBACKed,
  within the broker's own ``Receive Maximum`` from CONNACK.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable

from cloud.ingest import packets
from cloud.ingest.confirm import Sent
from cloud.ingest.mqtt import BrokerRefused, Connection, open_connection
from cloud.ingest.packets import Publish
from cloud.ingest.prepare import Incoming
from cloud.runtime.errors import BrokerError
from guanjia.core.backoff import Backoff
from guanjia.core.clock import Clock, to_ms
from guanjia.core.settings import MqttUrl

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 10.0
SESSION_EXPIRY_S = 7 * 86_400
MAX_OUTSTANDING_PUBLISHES = 2_000
"""Confirmations accepted and not yet PUBACKed; past it :meth:`MqttConsumer.publish` says FULL."""
MAX_HELD_BYTES = 64 << 20
"""Payload bytes received and not yet released (:meth:`MqttConsumer.ack_many`) past which the
consumer stops reading, whatever Receive Maximum allows (a thousand 1 MiB messages would be 1 GiB)."""


class MqttConsumer:
    def __init__(
        self,
        url: MqttUrl,
        client_id: str,
        topics: list[str],
        inbox: asyncio.Queue[Incoming],
        loop: asyncio.AbstractEventLoop,
        *,
        receive_maximum: int = 128,
        clean_start: bool = False,
        on_state: Callable[[bool], None] | None = None,
        clock: Clock,
        keepalive: int = KEEPALIVE_S,
    ) -> None:
        self.url = url
        # the receive time stamped on each message decides the plausible-timestamp window of
        # prepare.py (max age / max future): it comes from the service's clock, not the wall
        self.clock: Clock = clock
        self.client_id = client_id
        self.topics = topics
        self.inbox = inbox
        self.loop = loop
        self.receive_maximum = receive_maximum
        self.clean_start = clean_start
        self.on_state = on_state
        self.keepalive = keepalive
        self.generation = 0
        self.received = 0
        self.last_received = 0.0
        self.released = 0
        """Messages the worker is done with (:meth:`ack_many`, acked or not)."""
        self.held_bytes = 0
        self.last_error: BrokerError | None = None
        """Why the last connection attempt or connection failed (for logs, metrics and tests)."""
        self.connected = threading.Event()
        """Set while a session is up (a threading.Event so sync code may poll it too)."""
        self.published = 0
        """Confirmations accepted (sent, or waiting for the window or a reconnect)."""
        self.completed = 0
        """PUBACKs of those."""
        self.refused = 0
        """publish() calls answered FULL or DOWN (the caller kept the seqs pending)."""
        self._conn: Connection | None = None
        self._pub_conn: Connection | None = None
        """The confirmations' own connection (see :meth:`_confirm_session`)."""
        self.publishing = asyncio.Event()
        """Set while the confirmations' connection is up."""
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._unsubscribed = False
        self._next_pid = 0
        self._inflight: dict[int, bytes] = {}
        """Accepted confirmations by packet id, until PUBACKed (sent again after a reconnect)."""
        self._unsent: deque[int] = deque()
        self._window = 0  # sent on the confirmations' connection and not yet PUBACKed
        self._send_maximum = 65_535  # the broker's Receive Maximum there
        self._topics: dict[str, bytes] = {}
        """cmd topic → its encoded PUBLISH topic field, built once per gateway."""

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Connect in the background (a task on the event loop); retries until :meth:`stop`."""
        self._tasks = [self.loop.create_task(self._run(self._session), name=f"mqtt-{self.client_id}"),
                       self.loop.create_task(self._run(self._confirm_session), name=f"mqtt-{self.client_id}-c")]

    async def _run(self, session: Callable[[Backoff], Awaitable[None]]) -> None:
        backoff = Backoff(initial=1.0, cap=30.0)
        while not self._stopping:
            try:
                await session(backoff)
            except BrokerError as exc:
                self.last_error = exc
                if not self._stopping:
                    log.error("MQTT %s: %s", self.client_id, exc)
            if self._stopping:
                return
            await asyncio.sleep(backoff.next_delay())

    async def _session(self, backoff: Backoff) -> None:
        # a new generation before the first byte: what arrives now is acked on this connection only
        self.generation += 1
        conn, session = await open_connection(
            self.url, self.client_id, keepalive=self.keepalive, clean_start=self.clean_start,
            session_expiry=0 if self.clean_start else SESSION_EXPIRY_S, receive_maximum=self.receive_maximum,
            timeout=CONNECT_TIMEOUT_S, on_publishes=self._received)
        conn.room = self.room
        conn.resume()  # anything the handshake's chunk held beyond the room stays buffered
        if self._stopping:
            await conn.close(packets.disconnect())
            return
        self._conn = conn
        try:
            if not self._unsubscribed:
                await self._subscribe(conn)
            self.connected.set()
            backoff.reset()
            log.info("MQTT %s connected (session present: %s)", self.client_id, session.present)
            if self.on_state is not None:
                self.on_state(True)
            await self._keep_alive(conn)
        finally:
            self._conn = None
            was_up = self.connected.is_set()
            self.connected.clear()
            conn.abort()
            if was_up and self.on_state is not None:
                self.on_state(False)
        self._ended(conn)

    async def _confirm_session(self, backoff: Backoff) -> None:
        """The connection the storage confirmations go out on: clean, subscribed to nothing.

        Why not the ingest connection: their PUBACKs would queue behind the stream. While the
        worker holds its Receive Maximum the ingest connection is not read (see :meth:`room`),
        and Mosquitto 2.0.11 then has the session's whole backlog queued for it — measured in
        the 20,000-message burst, confirmations waited for their PUBACKs behind thousands of
        messages (commit→confirmation p99 6.7 s). Here a PUBACK comes back in a round trip.
        Accepted confirmations not yet PUBACKed are sent again after a reconnect."""
        conn, session = await open_connection(
            self.url, f"{self.client_id}-confirm", keepalive=self.keepalive, clean_start=True, session_expiry=0,
            receive_maximum=self.receive_maximum, timeout=CONNECT_TIMEOUT_S, on_pubacks=self._pubacked)
        if self._stopping:
            await conn.close(packets.disconnect())
            return
        self._pub_conn = conn
        try:
            self._send_maximum = session.receive_maximum
            self._window = 0
            self._unsent = deque(self._inflight)
            self._pump(resend=True)
            self.publishing.set()
            backoff.reset()
            await self._keep_alive(conn)
        finally:
            self._pub_conn = None
            self.publishing.clear()
            conn.abort()
        self._ended(conn)

    def _ended(self, conn: Connection) -> None:
        """Raise why a connection ended (nothing when we closed it)."""
        if conn.error is not None:
            if isinstance(conn.error, BrokerError):
                raise conn.error
            raise BrokerError(f"connection failed: {conn.error}") from conn.error
        if not self._stopping:
            raise BrokerError("the broker closed the connection")

    async def _subscribe(self, conn: Connection) -> None:
        pid = self._pid()
        try:
            _, _, _, codes = await conn.request(pid, packets.subscribe(pid, self.topics), CONNECT_TIMEOUT_S)
        except TimeoutError as exc:
            raise BrokerError(f"no SUBACK within {CONNECT_TIMEOUT_S:.0f}s") from exc
        refused = [code for code in codes if code >= 0x80]
        if refused:
            raise BrokerRefused(f"subscription of {self.client_id} refused", refused[0])

    async def _keep_alive(self, conn: Connection) -> None:
        """Until the connection ends: PINGREQ every half keep-alive; silence for 1.5 keep-alives
        is a dead connection."""
        interval = self.keepalive / 2
        while not conn.closed.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(interval):
                    await asyncio.shield(conn.closed)
            if conn.closed.done():
                return
            # while paused the broker's PINGRESPs wait unread behind its PUBLISHes: no verdict
            if not conn.paused and time.monotonic() - conn.last_received > self.keepalive * 1.5:
                conn.abort(BrokerError(f"no packet from the broker for {self.keepalive * 1.5:.0f}s"))
                return
            conn.write(packets.PINGREQ_PACKET)

    def unsubscribe(self) -> None:
        """Leave the shared group: the broker routes new messages to the other members only."""
        self._unsubscribed = True
        conn = self._conn
        if conn is not None and conn.is_open:
            conn.write(packets.unsubscribe(self._pid(), self.topics))

    async def stop(self, end_session: bool = False) -> None:
        """Disconnect; with ``end_session`` (only after a drain) the broker forgets the session.

        Why: Mosquitto keeps routing a share group's messages to *offline* persistent members, so
        a worker that leaves for good must not leave a session behind — its share would wait
        there until it expires and then be dropped. A crash leaves the session (and its
        unacknowledged messages) for the restarted worker with the same client id.
        """
        self._stopping = True
        conn, pub = self._conn, self._pub_conn
        if conn is not None and conn.is_open:
            await conn.close(packets.disconnect(0 if end_session and not self.clean_start else None))
        if pub is not None and pub.is_open:
            await pub.close(packets.disconnect())
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ------------------------------------------------------------------ receiving
    def room(self) -> int:
        """How many more messages may be received now: Receive Maximum minus those held
        (received, not yet released), none while :data:`MAX_HELD_BYTES` are held.

        Why the consumer enforces the bound itself: Mosquitto 2.0.11 honours Receive Maximum
        only until the first PUBACKs, then sends the session's whole queue (measured: 5 of 30
        held, one PUBACK, 10 delivered; five more, all 30). A connection with no room stops
        reading (``pause_reading``): the rest waits in the socket and the broker, as the bound
        intends, and memory stays ``receive_maximum × payload`` (at most :data:`MAX_HELD_BYTES`)."""
        if self.held_bytes >= MAX_HELD_BYTES:
            return 0
        return self.receive_maximum - (self.received - self.released)

    @property
    def saturated(self) -> bool:
        """No more messages can arrive until some are released (the batcher stops waiting)."""
        return self.room() <= 0

    def _received(self, items: list[Publish]) -> None:
        """All the PUBLISHes of one received chunk: one clock read, straight into the inbox."""
        now = to_ms(self.clock.now())
        generation = self.generation
        put = self.inbox.put_nowait
        size = 0
        for topic, payload, pid, qos in items:
            put(Incoming(topic, payload, pid, qos, generation, now))
            size += len(payload)
        self.held_bytes += size
        self.received += len(items)
        self.last_received = time.monotonic()

    def ack_many(self, items: Iterable[Incoming]) -> None:
        """Release messages the worker is done with (committed) and PUBACK them in one write;
        those of an older connection (or QoS 0) are not acked: the broker redelivers them on
        the new one. Reading resumes if it was paused for room."""
        generation = self.generation
        pids: list[int] = []
        size = count = 0
        for m in items:
            count += 1
            size += len(m.payload)
            if m.qos and m.generation == generation:
                pids.append(m.mid)
        self.released += count
        self.held_bytes -= size
        conn = self._conn
        if conn is None or not conn.is_open:
            return
        if pids:
            conn.write(packets.pubacks(pids))
        if conn.paused:
            conn.resume()

    # ------------------------------------------------------------------ confirmations out
    @property
    def outstanding(self) -> int:
        """Confirmations accepted and not yet PUBACKed."""
        return len(self._inflight)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, expiry_s: int = 0) -> Sent:
        """Queue a QoS 1 message without waiting (sent in this loop iteration's write).

        DOWN when not connected, FULL when :data:`MAX_OUTSTANDING_PUBLISHES` are unacknowledged:
        the caller keeps the message's content and tries again; nothing is dropped here.
        ``retain``/``expiry_s``: the worker's retained ``behind`` status (:mod:`cloud.ingest.backlog`)."""
        if not self.publishing.is_set():
            self.refused += 1
            return Sent.DOWN
        if len(self._inflight) >= MAX_OUTSTANDING_PUBLISHES:
            self.refused += 1
            return Sent.FULL
        encoded = self._topics.get(topic)
        if encoded is None:
            if len(self._topics) >= 100_000:
                self._topics.clear()
            encoded = self._topics[topic] = packets.topic_prefix(topic)
        pid = self._pid()
        self._inflight[pid] = packets.publish(encoded, payload, pid, retain=retain, expiry_s=expiry_s)
        self._unsent.append(pid)
        self.published += 1
        self._pump()
        return Sent.QUEUED

    def _pid(self) -> int:
        """The next free packet id (1…65535) of this client's outgoing packets."""
        for _ in range(65_535):
            self._next_pid = self._next_pid % 65_535 + 1
            if self._next_pid not in self._inflight:
                return self._next_pid
        raise BrokerError("no free MQTT packet id")  # unreachable: at most 2,000 outstanding

    def _pump(self, *, resend: bool = False) -> None:
        """Send accepted confirmations while the broker's Receive Maximum allows; ``resend``
        marks them DUP (first flush after a reconnect)."""
        conn = self._pub_conn
        if conn is None:
            return
        while self._unsent and self._window < self._send_maximum:
            pid = self._unsent.popleft()
            packet = self._inflight.get(pid)
            if packet is None:
                continue
            conn.write(packets.as_dup(packet) if resend else packet)
            self._window += 1

    def _pubacked(self, pids: list[int]) -> None:
        for pid in pids:
            if self._inflight.pop(pid, None) is not None:
                self.completed += 1
                self._window = max(0, self._window - 1)
        self._pump()
