"""MQTT v5 shared-subscription consumer with manual acknowledgements (paho-mqtt 2.x).

Why paho directly (not aiomqtt): acknowledging *after* the database commit needs
``manual_ack=True`` and ``Client.ack(mid, qos)``, and aiomqtt 2.5 does not expose them; its
incoming queue also drops messages when full, which with manual acks would strand them.

Backpressure is the broker's: the CONNECT carries ``Receive Maximum`` = ``receive_maximum``, so
the broker never has more than that many unacknowledged QoS 1 messages out to this worker. The
in-memory queue is sized above it, so the network thread never blocks (keep-alives keep
flowing) and memory is bounded by ``receive_maximum × max payload``. When the database is slow
or down, acks stop, the broker stops sending, and messages wait in the broker — durably, since
the session is persistent (``clean_start=False`` with a session expiry) and the client id stable:
a worker that crashes and restarts under the same id gets its unacknowledged messages again.

Handing messages to asyncio costs a thread hop only when the event loop is *idle*: the network
thread appends to a locked list and wakes the loop (``call_soon_threadsafe``) only when the loop
said it is waiting for messages (:meth:`MqttConsumer.waiting`); a busy loop takes the list itself
between batches (:meth:`MqttConsumer.take`). Why (issue 21): the old per-message
``run_coroutine_threadsafe`` + ``future.result`` was a large share of the worker's per-message cost,
and even one wake-up per burst was one per message in practice (the loop empties the list at once,
so nearly every message found it empty): a sampled profile of a busy worker put 8 % of its time in
that self-pipe write and the GIL hand-over after it. The inbox it fills is unbounded on purpose:
Receive Maximum bounds it (plus, briefly after a reconnect, the previous connection's messages,
whose acks are dropped).

Outgoing storage confirmations: paho's own queue cap refuses silently from the caller's point of
view (``MQTT_ERR_QUEUE_SIZE``), so it is off and this class keeps the bound itself — messages handed
to paho and not yet PUBACKed (``on_publish``) — and says FULL or DOWN instead of dropping; the
caller (:class:`cloud.ingest.confirm.ConfirmQueue`) keeps those seqs pending.

The network loop is paho's own thread (``loop_start``), the mode in which ``ack`` from the
asyncio thread is safe; it reconnects with paho's capped exponential delay (1 s … 30 s).
Every received message carries the connection ``generation``; acks of an older generation are
dropped because the broker redelivers those messages on the new connection anyway.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

from cloud.ingest.confirm import Sent
from cloud.ingest.prepare import Incoming
from guanjia.core.clock import Clock, to_ms
from guanjia.core.settings import MqttUrl

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 10.0
SESSION_EXPIRY_S = 7 * 86_400
MAX_OUTSTANDING_PUBLISHES = 2_000
"""Confirmations handed to paho and not yet PUBACKed; past it :meth:`MqttConsumer.publish` says FULL."""


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
        self.generation = 0
        self.received = 0
        self.last_received = 0.0
        self._unsubscribed = False
        self._handoff: list[Incoming] = []
        self._handoff_lock = threading.Lock()
        self._waiting = True
        """The event loop waits for messages: the next one wakes it (see the module docstring)."""
        self.published = 0
        """Confirmations handed to paho (accepted, possibly queued for a reconnect)."""
        self.completed = 0
        """PUBACKs of those (``on_publish``)."""
        self.refused = 0
        """publish() calls answered FULL or DOWN (the caller kept the seqs pending)."""
        self.connected = threading.Event()
        self._stop = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=mqtt.MQTTv5, manual_ack=True)
        if url.username:
            self.client.username_pw_set(url.username, url.password)
        if url.tls:
            self.client.tls_set()
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_publish = self._on_publish
        self.client.max_inflight_messages_set(receive_maximum)
        # no paho queue cap (it would refuse silently): the bound is MAX_OUTSTANDING_PUBLISHES, kept here
        self.client.max_queued_messages_set(0)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Connect in the background (paho's network thread); retries until :meth:`stop`."""
        self.client.connect_timeout = CONNECT_TIMEOUT_S
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        self.client.connect_async(self.url.host, self.url.port, KEEPALIVE_S, clean_start=self.clean_start,
                                  properties=self._connect_properties())
        self.client.loop_start()

    def unsubscribe(self) -> None:
        """Leave the shared group: the broker routes new messages to the other members only."""
        self._unsubscribed = True
        if self.connected.is_set():
            self.client.unsubscribe(self.topics)

    def stop(self, end_session: bool = False) -> None:
        """Disconnect; with ``end_session`` (only after a drain) the broker forgets the session.

        Why: Mosquitto keeps routing a share group's messages to *offline* persistent members, so
        a worker that leaves for good must not leave a session behind — its share would wait
        there until it expires and then be dropped. A crash leaves the session (and its
        unacknowledged messages) for the restarted worker with the same client id.
        """
        self._stop.set()
        properties = None
        if end_session and not self.clean_start:
            properties = Properties(PacketTypes.DISCONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = 0
        try:
            self.client.disconnect(properties=properties)
        except Exception:  # already gone
            log.debug("disconnect failed", exc_info=True)
        self.client.loop_stop()

    def ack(self, mid: int, qos: int, generation: int) -> None:
        """Acknowledge a committed message (thread-safe in paho's threaded mode)."""
        if qos == 0 or generation != self.generation or not self.connected.is_set():
            return
        self.client.ack(mid, qos)

    @property
    def outstanding(self) -> int:
        """Confirmations handed to paho and not yet PUBACKed."""
        return self.published - self.completed

    def publish(self, topic: str, payload: bytes) -> Sent:
        """Queue a QoS 1 message without waiting (paho's network thread sends it; thread-safe).

        DOWN when not connected, FULL when :data:`MAX_OUTSTANDING_PUBLISHES` are unacknowledged:
        the caller keeps the message's content and tries again; nothing is dropped here. A publish
        paho takes while the connection is just going down (``MQTT_ERR_NO_CONN``) stays in paho's
        session queue and goes out after the reconnect, so it counts as queued."""
        if not self.connected.is_set():
            self.refused += 1
            return Sent.DOWN
        if self.outstanding >= MAX_OUTSTANDING_PUBLISHES:
            self.refused += 1
            return Sent.FULL
        try:
            info = self.client.publish(topic, payload, qos=1)
        except (ValueError, RuntimeError, OSError):
            log.debug("publish to %s failed", topic[:200], exc_info=True)
            self.refused += 1
            return Sent.DOWN
        if info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            self.published += 1
            return Sent.QUEUED
        self.refused += 1
        return Sent.FULL

    def _on_publish(self, client: mqtt.Client, userdata: Any, mid: int, reason: ReasonCode,
                    properties: Properties | None) -> None:
        self.completed += 1

    def _connect_properties(self) -> Properties:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = 0 if self.clean_start else SESSION_EXPIRY_S
        props.ReceiveMaximum = self.receive_maximum
        return props

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: mqtt.ConnectFlags, reason: ReasonCode,
                    properties: Properties | None) -> None:
        if reason.is_failure:
            log.error("MQTT broker refused %s: %s", self.client_id, reason)
            return
        self.generation += 1
        self.connected.set()
        if not self._unsubscribed:
            client.subscribe([(topic, SubscribeOptions(qos=1)) for topic in self.topics])
        log.info("MQTT %s connected (session present: %s)", self.client_id, flags.session_present)
        if self.on_state is not None:
            self.on_state(True)

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: mqtt.DisconnectFlags, reason: ReasonCode,
                       properties: Properties | None) -> None:
        self.connected.clear()
        if self.on_state is not None:
            self.on_state(False)
        if not self._stop.is_set():
            log.warning("MQTT %s disconnected: %s", self.client_id, reason)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        self.received += 1
        self.last_received = time.monotonic()
        item = Incoming(message.topic, bytes(message.payload), message.mid, message.qos, self.generation,
                        to_ms(self.clock.now()))
        with self._handoff_lock:
            self._handoff.append(item)
            wake, self._waiting = self._waiting, False
        if wake:  # the loop waits: one wake-up, and it takes everything appended until it runs
            with contextlib.suppress(RuntimeError):  # the loop is closed (shutdown): the broker redelivers
                self.loop.call_soon_threadsafe(self.take)

    @property
    def handed_off(self) -> int:
        """Messages received and not yet in the inbox (a gauge: read without the lock)."""
        return len(self._handoff)

    def take(self) -> int:
        """On the event loop: move the handed-off messages into the inbox; returns how many."""
        with self._handoff_lock:
            items, self._handoff = self._handoff, []
        for item in items:
            self.inbox.put_nowait(item)
        return len(items)

    def waiting(self) -> None:
        """On the event loop, right before it awaits the inbox: take what is here, or have the
        next message wake the loop."""
        with self._handoff_lock:
            if not self._handoff:
                self._waiting = True
                return
        self.take()
