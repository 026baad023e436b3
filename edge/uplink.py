"""The uplink: drains the outbox to the broker with QoS 1, keeps the retained status, takes commands.

* One MQTT session per connection (clean session): whatever was in flight when a connection died
  is simply resent from the outbox after the reconnect — the outbox, not paho's memory, is the
  source of truth. Reconnects use capped jittered backoff.
* Up to ``max_inflight`` batches await their PUBACK at once. Any publish that misses its deadline
  tears the session down and the unacked batches go again, oldest first.
* End-to-end ack (``end_to_end_ack``, default): a PUBACK only marks a batch *sent*; it leaves the
  outbox when the cloud's ``stored`` confirmation (on ``…/cmd``, see docs/wire.md) names its seq,
  because a broker can PUBACK and then drop a message (no subscriber after a restart). A sent
  batch unconfirmed after ``confirm_timeout_s`` (doubling per batch up to
  ``confirm_timeout_max_s``) is resent first, with the same seq; the cloud dedupes. A confirmation
  with the cloud's ``behind`` hint restarts those timers (:meth:`edge.outbox.Outbox.postpone`), so a
  cloud working through a backlog is not hit by a resend storm. An edge none of whose batches is
  committed gets no confirmation to carry that hint, so it also subscribes to the ingest workers'
  retained ``behind`` status (``guanjia/v1/_cloud/ingest/+/behind``, docs/wire.md): while one is
  in force, due batches are re-armed (jittered, for at most ``behind_hold_max_s`` after their
  first send) instead of resent (:meth:`edge.outbox.Outbox.hold`). Without end-to-end ack a
  batch is deleted at the group commit after its PUBACK.
* Order on every connection: alarms first, then events, then *live* telemetry (committed after
  the connection came up), then the *backlog* (committed before), oldest first. The backlog may use
  at most ``catchup_share`` of the in-flight slots (and optionally ``catchup_items_per_s``), so a
  catch-up after a long outage never starves live data.
* Status: retained ``online`` with health figures on connect and every ``heartbeat_s``; the
  broker publishes the retained last-will ``offline`` if the agent vanishes; a clean shutdown
  publishes ``offline`` itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import aiomqtt

from edge.config import UplinkConfig
from edge.errors import OutboxError
from edge.outbox import KIND_BY_PRIORITY, Outbox, StoredMessage, now_ms
from guanjia.core.backoff import Backoff
from guanjia.core.settings import MqttUrl
from guanjia.core.wire import (
    INGEST_STATUS_FILTER,
    SEQUENCED_KINDS,
    encode_spliced,
    encode_status,
    parse_ingest_behind,
    parse_stored,
    stored_behind,
    topic,
)

log = logging.getLogger(__name__)

CommandCallback = Callable[[bytes], Awaitable[bytes | None]]


def envelope(msg: StoredMessage, *, gateway: str, community: str, sent_at: int, incarnation: str) -> bytes:
    """The wire message for a stored batch (same JSON as :func:`guanjia.core.wire.encode`), built by
    splicing the stored items array in, so resending a 500 kB batch does not re-serialise it."""
    return encode_spliced(msg.kind, gateway=gateway, community=community, seq=msg.seq, sent_at=sent_at,
                          body=msg.body, incarnation=incarnation)


def mqtt_client_args(config: UplinkConfig, url: str | None = None) -> dict[str, Any]:
    """Host, credentials and TLS for an aiomqtt client from the uplink config."""
    parsed = MqttUrl.parse(url or config.url)
    username = config.username or parsed.username
    password = config.password or parsed.password
    if config.password_file is not None:
        password = config.password_file.read_text(encoding="utf-8").strip()
    args: dict[str, Any] = {"hostname": parsed.host, "port": parsed.port, "username": username,
                            "password": password}
    if parsed.tls or config.tls is not None:
        tls = config.tls
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls and tls.ca_file else None)
        if tls is not None and tls.cert_file is not None:
            context.load_cert_chain(str(tls.cert_file), str(tls.key_file) if tls.key_file else None)
        if tls is not None and tls.insecure:
            context.check_hostname = False
        args["tls_context"] = context
    return args


class _Cursor:
    """Prefetched messages of one queue (a priority, or the live/backlog part of telemetry)."""

    __slots__ = ("after", "buffer", "dirty", "upto")

    def __init__(self, after: int, upto: int | None) -> None:
        self.after = after
        self.upto = upto
        self.buffer: deque[StoredMessage] = deque()
        self.dirty = True


class Uplink:
    """Runs until cancelled: ``await uplink.run()`` (the agent starts it in its TaskGroup)."""

    def __init__(self, config: UplinkConfig, *, gateway: str, community: str, outbox: Outbox,
                 health: Callable[[], dict[str, Any]], heartbeat_s: float = 30.0,
                 on_command: CommandCallback | None = None) -> None:
        self.config = config
        self.gateway = gateway
        self.community = community
        self.outbox = outbox
        self.health = health
        self.heartbeat_s = heartbeat_s
        self.on_command = on_command
        self.status_topic = topic(community, gateway, "status")
        self.cmd_topic = topic(community, gateway, "cmd")
        self.reply_topic = topic(community, gateway, "cmd/reply")
        self._topics: dict[str, str] = {kind: topic(community, gateway, kind) for kind in SEQUENCED_KINDS}
        self._client: aiomqtt.Client | None = None
        self._slot = asyncio.Event()
        self._status_now = asyncio.Event()
        self.connected = False
        self._stopping = False
        self._draining = False
        self._failures = 0
        self._broker = ""
        # metrics
        self.published = 0
        self.published_items = 0
        self.backlog_items = 0
        self.inflight = 0
        self.reconnects = 0
        self.publish_errors = 0
        self.commands = 0
        self.confirmations = 0
        self.behind_hints = 0
        self.behind_statuses = 0
        self.resent = 0
        self.last_error = ""
        self.connected_since: float | None = None

    # ------------------------------------------------------------------ connection loop
    async def run(self) -> None:
        backoff = Backoff(self.config.reconnect_initial_s, max(self.config.reconnect_initial_s,
                                                                self.config.reconnect_max_s))
        while not self._stopping:
            try:
                await self._session(backoff)
            except* (aiomqtt.MqttError, OSError, TimeoutError, ssl.SSLError) as group:
                self._disconnected(group.exceptions[0])
            except* OutboxError as group:
                # the local store failed (disk full, I/O error): drop the session, retry after backoff
                log.error("uplink paused, outbox unreadable: %s", group.exceptions[0])
                self._disconnected(group.exceptions[0])
            delay = backoff.next_delay()
            log.debug("uplink reconnect in %.1fs", delay)
            await asyncio.sleep(delay)

    def _disconnected(self, exc: BaseException) -> None:
        if self.connected:
            self._failures = 0
            log.warning("uplink to broker lost: %s", exc or type(exc).__name__)
        else:
            self._failures += 1
            if self._failures == 1 or self._failures % 20 == 0:
                # bad credentials or an unreachable broker must be visible, but not flood the log
                log.warning("uplink cannot connect (attempt %d): %s", self._failures, exc or type(exc).__name__)
        self.last_error = str(exc) or type(exc).__name__
        self.connected = False
        self.connected_since = None
        self._client = None
        self.inflight = 0

    def _new_client(self) -> aiomqtt.Client:
        will = aiomqtt.Will(self.status_topic, self._status_payload("offline", {}), qos=1, retain=True)
        args = mqtt_client_args(self.config)
        self._broker = f"{args['hostname']}:{args['port']}"
        client = aiomqtt.Client(
            **args,
            identifier=f"guanjia-edge-{self.community}-{self.gateway}",
            clean_session=True,
            keepalive=self.config.keepalive_s,
            will=will,
            timeout=self.config.connect_timeout_s,
            max_inflight_messages=self.config.max_inflight + 8,
            max_queued_incoming_messages=1000,
        )
        # our own window bounds the calls in flight; aiomqtt's default warns above 10
        client.pending_calls_threshold = self.config.max_inflight + 16
        return client

    async def _session(self, backoff: Backoff) -> None:
        client = self._new_client()
        async with contextlib.AsyncExitStack() as stack:
            async with asyncio.timeout(self.config.connect_timeout_s):
                await stack.enter_async_context(client)
                # Count the session as soon as the broker accepted it, so the "online" status below
                # already carries the new count: the cloud dates a reconnect (a count above 1 that
                # changed) from this message, not from the next heartbeat 30 s later.
                first = self.reconnects == 0
                self.reconnects += 1
                await client.subscribe(self.cmd_topic, qos=1)
                if self.config.end_to_end_ack and self.config.behind_hold_max_s > 0:
                    await client.subscribe(INGEST_STATUS_FILTER, qos=1)
                await client.publish(self.status_topic, self._status_payload("online", self.health()),
                                     qos=1, retain=True)
            if not first or not self.connected:
                log.info("uplink connected to broker %s as %s", self._broker, self.gateway)
            self.connected = True
            self.connected_since = time.monotonic()
            self._client = client
            backoff.reset()
            async with asyncio.TaskGroup() as tg:
                tg.create_task(self._sender(client, tg), name="uplink-sender")
                tg.create_task(self._heartbeat(client), name="uplink-heartbeat")
                tg.create_task(self._listen(client, tg), name="uplink-commands")

    # ------------------------------------------------------------------ status
    def _status_payload(self, state: str, health: dict[str, Any]) -> bytes:
        return encode_status(self.gateway, self.community, state, now_ms(), health)

    def status_changed(self) -> None:
        """Publish the status now instead of at the next heartbeat (a config state changed: the
        cloud's rollout waits for it)."""
        self._status_now.set()

    async def _heartbeat(self, client: aiomqtt.Client) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._status_now.wait(), self.heartbeat_s)
            self._status_now.clear()
            async with asyncio.timeout(self.config.publish_timeout_s):
                await client.publish(self.status_topic, self._status_payload("online", self.health()),
                                     qos=1, retain=True)

    async def drain(self, timeout: float = 5.0) -> None:
        """Clean shutdown, after acquisition stopped and the last commit: deliver what is stored,
        then take no new batches and wait for the PUBACKs of those in flight (and, with end-to-end
        ack, the cloud's confirmations), so they are deleted now instead of resent — duplicated —
        after a restart.

        Why deliver first: the shutdown's own commit holds the agent's last moments (the readings
        that say the devices went quiet, an alarm raised as the plant stopped); left in the outbox
        they would reach the cloud only at the next start, which may be days away. The sender goes
        on as usual for at most half of ``timeout``, until the outbox is empty; a long backlog is
        not pushed at shutdown (what is left waits for the next start)."""
        deadline = time.monotonic() + timeout
        send_until = time.monotonic() + timeout / 2
        while self.outbox.depth() > 0 and self.connected and time.monotonic() < send_until:
            await asyncio.sleep(0.02)
        self._draining = True
        while self.inflight > 0 and self.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        # then, briefly, for the cloud's confirmations of what was just sent (fewer resends later)
        while self.outbox.unconfirmed() > 0 and self.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    async def say_offline(self) -> None:
        """Clean shutdown: replace the retained status with ``offline`` (the will is not sent then)."""
        self._stopping = True
        client = self._client
        if client is None:
            return
        with contextlib.suppress(aiomqtt.MqttError, TimeoutError, OSError):
            async with asyncio.timeout(3):
                await client.publish(self.status_topic, self._status_payload("offline", self.health()),
                                     qos=1, retain=True)

    # ------------------------------------------------------------------ commands
    async def _listen(self, client: aiomqtt.Client, tg: asyncio.TaskGroup) -> None:
        busy = asyncio.Semaphore(8)
        async for message in client.messages:
            payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
            if message.topic.matches(INGEST_STATUS_FILTER):
                self.ingest_status(message.topic.value, payload)
                continue
            if not message.topic.matches(self.cmd_topic):
                continue
            ranges = parse_stored(payload, self.outbox.incarnation)
            if ranges is not None:
                # the cloud's storage confirmation: only now may the batches leave the outbox
                self.confirmations += 1
                self.outbox.confirm(ranges)
                if stored_behind(payload):
                    self.behind_hints += 1
                    self.outbox.postpone()
                self._slot.set()
                continue
            if self.on_command is None:
                continue
            self.commands += 1
            tg.create_task(self._command(client, busy, payload))

    def ingest_status(self, source: str, payload: bytes) -> None:
        """An ingest worker's retained ``behind`` status (or its clearing, an empty payload)."""
        hold_s = parse_ingest_behind(payload)
        if hold_s is None:
            self.outbox.release(source)
            return
        self.behind_statuses += 1
        self.outbox.hold(source, hold_s)

    async def _command(self, client: aiomqtt.Client, busy: asyncio.Semaphore, payload: bytes) -> None:
        assert self.on_command is not None
        async with busy:
            reply = await self.on_command(payload)
        if reply is not None:
            await self.publish_reply(client, reply)

    async def publish_reply(self, client: aiomqtt.Client, reply: bytes) -> None:
        async with asyncio.timeout(self.config.publish_timeout_s):
            await client.publish(self.reply_topic, reply, qos=1)

    # ------------------------------------------------------------------ sender
    async def _sender(self, client: aiomqtt.Client, tg: asyncio.TaskGroup) -> None:
        outbox = self.outbox
        outbox.forget_sent()  # every stored row goes again on this connection (cursors start at 0)
        watermark = outbox.last_seq
        cursors = {
            "alarms": _Cursor(0, None),
            "events": _Cursor(0, None),
            "live": _Cursor(watermark, None),
            "backlog": _Cursor(0, watermark),
        }
        prio = {"alarms": 0, "events": 1, "live": 2, "backlog": 2}
        max_inflight = self.config.max_inflight
        backlog_slots = max(1, int(max_inflight * self.config.catchup_share))
        inflight: set[int] = set()
        backlog_inflight = [0]
        bucket = _TokenBucket(self.config.catchup_items_per_s)
        retry: deque[StoredMessage] = deque()
        next_expiry_check = 0.0
        outbox.wake.set()
        while not self._stopping:
            if self.config.end_to_end_ack and time.monotonic() >= next_expiry_check and not retry:
                next_expiry_check = time.monotonic() + 1.0
                due = outbox.expired(hold_max_s=self.config.behind_hold_max_s)
                if due:
                    rows = await outbox.fetch_seqs(due)
                    if rows:
                        log.info("uplink: %d batches not confirmed stored in time (seq %d…); resending",
                                 len(rows), rows[0].seq)
                    retry.extend(rows)
            if outbox.wake.is_set():
                outbox.wake.clear()
                for name in ("alarms", "events", "live"):
                    cursors[name].dirty = True
            self._slot.clear()
            sent_any = False
            while len(inflight) < max_inflight and not self._draining:
                chosen: StoredMessage | None = None
                from_backlog = False
                while retry and chosen is None:
                    candidate = retry.popleft()
                    if candidate.seq not in inflight:
                        chosen = candidate
                        self.resent += 1
                for name in ("alarms", "events", "live", "backlog"):
                    if chosen is not None:
                        break
                    cur = cursors[name]
                    if name == "backlog" and (backlog_inflight[0] >= backlog_slots or not bucket.ready()):
                        continue
                    if not cur.buffer and cur.dirty:
                        # prefetch no more than can go out now: batches are up to ~1 MB each
                        limit = max_inflight - len(inflight)
                        rows = await outbox.fetch(prio[name], cur.after, cur.upto, limit=limit)
                        cur.buffer.extend(rows)
                        if rows:
                            cur.after = rows[-1].seq
                        if len(rows) < limit:
                            cur.dirty = False
                    if cur.buffer:
                        chosen = cur.buffer.popleft()
                        from_backlog = name == "backlog"
                        break
                if chosen is None:
                    break
                inflight.add(chosen.seq)
                if from_backlog:
                    backlog_inflight[0] += 1
                    bucket.take(chosen.n_items)
                self.inflight = len(inflight)
                tg.create_task(self._publish(client, chosen, inflight, backlog_inflight, from_backlog))
                sent_any = True
            if sent_any:
                await asyncio.sleep(0)
                continue
            await self._wait_for_work(bucket)

    async def _wait_for_work(self, bucket: _TokenBucket) -> None:
        waits = [asyncio.ensure_future(self.outbox.wake.wait()), asyncio.ensure_future(self._slot.wait())]
        try:
            await asyncio.wait(waits, timeout=bucket.wait_s(1.0), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waits:
                w.cancel()

    async def _publish(self, client: aiomqtt.Client, msg: StoredMessage, inflight: set[int],
                       backlog_inflight: list[int], from_backlog: bool) -> None:
        payload = envelope(msg, gateway=self.gateway, community=self.community, sent_at=now_ms(),
                           incarnation=self.outbox.incarnation)
        try:
            async with asyncio.timeout(self.config.publish_timeout_s):
                await client.publish(self._topics[KIND_BY_PRIORITY[msg.priority]], payload, qos=1)
        except BaseException:
            self.publish_errors += 1
            raise
        if self.config.end_to_end_ack:
            self.outbox.mark_sent(msg.seq, msg.priority, msg.n_items, self.config.confirm_timeout_s,
                                  self.config.confirm_timeout_max_s)
        else:
            self.outbox.ack(msg.seq)
        inflight.discard(msg.seq)
        if from_backlog:
            backlog_inflight[0] -= 1
            self.backlog_items += msg.n_items
        self.inflight = len(inflight)
        self.published += 1
        self.published_items += msg.n_items
        self._slot.set()

    def stats(self) -> dict[str, Any]:
        return {"connected": self.connected, "published": self.published, "published_items": self.published_items,
                "backlog_items_sent": self.backlog_items, "inflight": self.inflight,
                "sessions": self.reconnects, "publish_errors": self.publish_errors, "commands": self.commands,
                "confirmations": self.confirmations, "behind_hints": self.behind_hints,
                "behind_statuses": self.behind_statuses, "cloud_behind": self.outbox.cloud_behind,
                "resent": self.resent, "last_error": self.last_error[:200]}


class _TokenBucket:
    """Optional cap on backlog items per second (0 = no cap)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self.tokens = rate
        self.stamp = time.monotonic()

    def _refill(self) -> None:
        now = time.monotonic()
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now

    def ready(self) -> bool:
        if self.rate <= 0:
            return True
        self._refill()
        return self.tokens > 0

    def take(self, n: int) -> None:
        if self.rate > 0:
            self.tokens -= n

    def wait_s(self, default: float) -> float:
        if self.rate <= 0 or self.tokens > 0:
            return default
        return min(default, max(0.01, -self.tokens / self.rate))
