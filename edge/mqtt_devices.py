"""MQTT devices (the access gates): subscribe to each device's topic and map payloads with its profile.

The gates publish JSON to ``devices/{community}/{device}/…`` on the same broker; the agent
subscribes with its own per-gateway credentials (its ACL reads ``devices/{community}/#`` only). A
payload that does not decode with the profile's mapping is *never* dropped silently: it is counted,
stored in the outbox ``rejects`` table with the reason, and reported as a ``payload_rejected``
event (at most once a minute per device, with the count). A device that stays silent longer than
``stale_after_s`` (or its profile's heartbeat × 3) is reported offline, and online again with the
next message.

Time: every reading is stamped with the agent's receive time (its injected clock), never with the
device's own ``ts``. The device's time is kept alongside as the ``device_clock`` point (epoch s), and
a device clock more than five minutes away from the agent's flags the reading ``clock_skew``. Why
not trust a device clock that looks close enough: a gate whose clock jumps four minutes ahead and
back would otherwise put its readings into the future in the cloud and, after the jump back, have
the rules skip four minutes of its readings as out of order (their windows cannot run backwards) —
an alarm raised late or never. The agent's clock is the one the rules' ``for:`` timers run on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import aiomqtt

from device_profiles import Profile
from device_profiles.errors import CodecError
from device_profiles.payload import decode_payload
from edge.config import MqttDeviceConfig, UplinkConfig
from edge.outbox import Outbox, now_ms
from edge.polling import ReadingSink
from edge.uplink import mqtt_client_args
from guanjia.core.backoff import Backoff
from guanjia.core.wire import Quality, Scalar

log = logging.getLogger(__name__)

MAX_SKEW_MS = 5 * 60 * 1000
DEVICE_CLOCK = "device_clock"
"""The point carrying the device's own timestamp (epoch s), as the lift profile names its box clock."""


@dataclass(slots=True)
class MqttDevice:
    config: MqttDeviceConfig
    profile: Profile
    topic: str
    stale_after_s: float
    last_seen: float = 0.0
    online: bool | None = None
    rejects: int = 0
    last_reject_event: float = field(default=-1e9)
    messages: int = 0

    @property
    def id(self) -> str:
        return self.config.id


class MqttDeviceListener:
    def __init__(self, devices: list[tuple[MqttDeviceConfig, Profile]], *, community: str, uplink: UplinkConfig,
                 url: str | None, gateway: str, sink: ReadingSink, outbox: Outbox,
                 clock: Callable[[], int] = now_ms) -> None:
        self.community = community
        self.gateway = gateway
        self.uplink = uplink
        self.url = url
        self.sink = sink
        self.outbox = outbox
        self.clock = clock
        self.devices: dict[str, MqttDevice] = {}
        for cfg, profile in devices:
            if profile.mqtt is None:
                continue
            topic = cfg.topic or profile.mqtt.topic_for(community, cfg.id)
            stale = cfg.stale_after_s
            if profile.mqtt.heartbeat_s:
                stale = min(stale, profile.mqtt.heartbeat_s * 3)
            self.devices[topic] = MqttDevice(cfg, profile, topic, stale)
        self.connected = False
        self.connected_at = 0.0
        """Monotonic time of the current subscription: silence is only counted from there."""
        self.rejects = 0
        self.messages = 0

    @property
    def device_ids(self) -> set[str]:
        return {d.id for d in self.devices.values()}

    async def run(self) -> None:
        if not self.devices:
            return
        backoff = Backoff(self.uplink.reconnect_initial_s, max(self.uplink.reconnect_initial_s,
                                                               self.uplink.reconnect_max_s))
        failures = 0
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._staleness(), name="mqtt-devices-staleness")
            while True:
                try:
                    await self._session(backoff)
                except (aiomqtt.MqttError, OSError, TimeoutError) as exc:
                    failures = 0 if self.connected else failures + 1
                    if self.connected or failures == 1 or failures % 20 == 0:
                        log.warning("MQTT device subscription lost or refused: %s", exc or type(exc).__name__)
                    self.connected = False
                await asyncio.sleep(backoff.next_delay())

    async def _session(self, backoff: Backoff) -> None:
        client = aiomqtt.Client(**mqtt_client_args(self.uplink, self.url),
                                identifier=f"guanjia-edge-{self.community}-{self.gateway}-devices",
                                clean_session=True, keepalive=self.uplink.keepalive_s,
                                timeout=self.uplink.connect_timeout_s, max_queued_incoming_messages=10_000)
        async with asyncio.timeout(self.uplink.connect_timeout_s):
            await client.__aenter__()
        try:
            async with asyncio.timeout(self.uplink.connect_timeout_s):
                await client.subscribe([(t, 1) for t in self.devices])
            self.connected = True
            self.connected_at = time.monotonic()
            backoff.reset()
            log.info("subscribed to %d MQTT device topics", len(self.devices))
            async for message in client.messages:
                payload = message.payload if isinstance(message.payload, bytes) else str(message.payload).encode()
                self.on_message(message.topic.value, payload)
        finally:
            self.connected = False
            await client.__aexit__(None, None, None)

    def on_message(self, topic: str, payload: bytes) -> None:
        device = self.devices.get(topic)
        if device is None:
            return
        self.messages += 1
        device.messages += 1
        received = self.clock()
        try:
            ts, decoded = decode_payload(device.profile, payload)
        except (CodecError, KeyError, ValueError, TypeError) as exc:
            self._reject(device, topic, str(exc) or type(exc).__name__, payload)
            return
        device.last_seen = time.monotonic()
        if device.online is not True:
            if device.online is False:
                log.info("MQTT device %s is back", device.id)
            self.sink.event(device.id, "device_online", {"topic": topic})
            device.online = True
        if not decoded:
            return
        quality = Quality.GOOD
        values: dict[str, Scalar] = dict(decoded)
        if ts is not None:
            values[DEVICE_CLOCK] = ts // 1000
            if abs(ts - received) > MAX_SKEW_MS:
                quality = Quality.CLOCK_SKEW
        self.sink.reading(device.id, received, values, dict.fromkeys(values, quality))

    def _reject(self, device: MqttDevice, topic: str, reason: str, payload: bytes) -> None:
        self.rejects += 1
        device.rejects += 1
        self.outbox.add_reject("mqtt", topic, reason, payload)
        now = time.monotonic()
        if now - device.last_reject_event >= 60:
            device.last_reject_event = now
            log.warning("MQTT device %s: payload rejected (%s)", device.id, reason)
            self.sink.event(device.id, "payload_rejected", {"reason": reason[:200], "rejects": device.rejects,
                                                            "topic": topic})

    async def _staleness(self) -> None:
        """A device is silent when *it* stopped talking, not when the agent stopped listening: while
        the subscription is down nothing is declared offline, and after a reconnect silence is counted
        from the reconnect (an uplink outage behind a shared broker is the gateway's incident, reported
        once by the cloud, not one offline alarm per gate)."""
        while True:
            await asyncio.sleep(1.0)
            if not self.connected:
                continue
            now = time.monotonic()
            for device in self.devices.values():
                seen = max(device.last_seen, self.connected_at)
                if device.online is not False and now - seen > device.stale_after_s:
                    device.online = False
                    log.warning("MQTT device %s silent for %.0fs: offline", device.id, now - seen)
                    self.sink.event(device.id, "device_offline", {"silent_s": round(now - seen, 1)})
                    names = [p.name for p in device.profile.points]
                    self.sink.reading(device.id, self.clock(), dict.fromkeys(names),
                                      dict.fromkeys(names, Quality.OFFLINE))

    @property
    def online_count(self) -> int:
        return sum(1 for d in self.devices.values() if d.online)

    def stats(self) -> dict[str, object]:
        return {"connected": self.connected, "devices": len(self.devices), "messages": self.messages,
                "rejects": self.rejects, "online": self.online_count}
