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

The network loop is paho's own thread (``loop_start``), the mode in which ``ack`` from the
asyncio thread is safe; it reconnects with paho's capped exponential delay (1 s … 30 s).
Every received message carries the connection ``generation``; acks of an older generation are
dropped because the broker redelivers those messages on the new connection anyway.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
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

from cloud.ingest.prepare import Incoming
from guanjia.core.clock import Clock, to_ms
from guanjia.core.settings import MqttUrl

log = logging.getLogger(__name__)

KEEPALIVE_S = 30
CONNECT_TIMEOUT_S = 10.0
SESSION_EXPIRY_S = 7 * 86_400
MAX_QUEUED_PUBLISHES = 10_000


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
        self.client.max_inflight_messages_set(receive_maximum)
        # storage confirmations wait here while the broker is away (bounded; the edge resends
        # anything left unconfirmed, so dropping one is a resend, never a loss)
        self.client.max_queued_messages_set(MAX_QUEUED_PUBLISHES)

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

    def publish(self, topic: str, payload: bytes) -> bool:
        """Queue a QoS 1 message without waiting (paho's network thread sends it; thread-safe).
        Returns False when paho refused it (queue full, or not connected and nothing queued)."""
        try:
            info = self.client.publish(topic, payload, qos=1)
        except (ValueError, RuntimeError, OSError):
            log.debug("publish to %s failed", topic[:200], exc_info=True)
            return False
        return info.rc in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN)

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
        future = asyncio.run_coroutine_threadsafe(self.inbox.put(item), self.loop)
        while not self._stop.is_set():
            try:
                future.result(timeout=0.5)
                return
            except (TimeoutError, concurrent.futures.TimeoutError):
                continue
        future.cancel()
