"""MQTT front end: simulated gates and lift IoT boxes publishing JSON through a real broker (aiomqtt).

Any profile with an ``mqtt:`` mapping is published the same way, laid out (and, for the vendor box
families, coded) by :func:`device_profiles.payload.encode_payload`; the devices are still called
gates below, after the first of them.

All gates of a fleet share one MQTT connection (like the gates' cloud bridge in a guard house), so a
fleet of hundreds of gates costs one socket; each gate still publishes on its own topic
(``devices/{community}/{device}/state``) with the payload layout of its profile. A gate publishes
when its state changes (at most every ``min_interval_s`` wall seconds, a real gate's event rate
limit) and at least every ``heartbeat_s`` of its profile; its ``heartbeat`` counter increases with
every message. An ``offline`` gate simply stops publishing. Connection losses are retried with
capped, jittered backoff; messages of the outage are not queued (a gate has no store-and-forward),
the next state message carries the counters.

A gate whose profile has an ``mqtt.command_topic`` and ``commands:`` takes commands there
(``{"id", "cmd": "open"}``) and answers on the topic + ``/reply`` (``{"id", "ok"}``, or ``ok:
false`` with a ``reason``), as the edge's :mod:`edge.mqtt_devices` expects; an ``offline`` gate
does not answer (the agent times out).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass, field

import aiomqtt
import orjson

from device_profiles import Profile
from device_profiles.codec import Value
from device_profiles.payload import encode_payload
from guanjia.core.backoff import Backoff
from guanjia.core.settings import MqttUrl
from simulators.physics.base import DeviceModel
from simulators.physics.gate import GateModel

log = logging.getLogger(__name__)

PUBLISH_TIMEOUT_S = 10.0


@dataclass(slots=True)
class MqttGate:
    device_id: str
    profile: Profile
    model: DeviceModel
    topic: str
    offline: bool = False
    published: int = 0
    heartbeat: int = 0
    last_values: dict[str, Value] = field(default_factory=dict)
    last_publish: float = 0.0
    command_topic: str | None = None
    commands: int = 0


class GatePublisher:
    """Publishes every gate's state; one task, one connection, reconnecting with backoff."""

    def __init__(self, url: str, gates: list[MqttGate], client_id: str, *, tick_s: float = 0.5,
                 min_interval_s: float = 1.0) -> None:
        self.url = MqttUrl.parse(url)
        self.gates = gates
        self.client_id = client_id
        self.tick_s = tick_s
        self.min_interval_s = min_interval_s
        self.connected = asyncio.Event()
        self.errors = 0
        self._stopping = asyncio.Event()

    def stop(self) -> None:
        """Ask :meth:`run` to disconnect cleanly and return (cancelling mid-publish can stall aiomqtt)."""
        self._stopping.set()

    def _due(self, gate: MqttGate, now: float) -> dict[str, Value] | None:
        if gate.offline:
            return None
        values = gate.model.values()
        heartbeat = gate.profile.mqtt.heartbeat_s if gate.profile.mqtt and gate.profile.mqtt.heartbeat_s else 30.0
        mapped = gate.profile.mqtt.mapped_points if gate.profile.mqtt else set(values)
        changed = {k: v for k, v in values.items() if k != "heartbeat" and k in mapped} != \
            {k: v for k, v in gate.last_values.items() if k != "heartbeat" and k in mapped}
        if (changed and now - gate.last_publish >= self.min_interval_s) or now - gate.last_publish >= heartbeat:
            return values
        return None

    async def _publish_all(self, client: aiomqtt.Client) -> None:
        now = time.monotonic()
        for gate in self.gates:
            values = self._due(gate, now)
            if values is None:
                continue
            gate.heartbeat += 1
            values["heartbeat"] = gate.heartbeat
            stamp = int((gate.model.device_time() + gate.model.clock_skew_s) * 1000)
            payload = encode_payload(gate.profile, values, stamp)
            qos = gate.profile.mqtt.qos if gate.profile.mqtt else 1
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await client.publish(gate.topic, payload, qos=qos)
            gate.last_values = values
            gate.last_publish = now
            gate.published += 1

    async def _commands(self, client: aiomqtt.Client, gates: dict[str, MqttGate]) -> None:
        """Answer the commands addressed to the gates (see the module docstring)."""
        async for message in client.messages:
            gate = gates.get(str(message.topic))
            if gate is None or gate.offline:
                continue
            try:
                doc = orjson.loads(message.payload if isinstance(message.payload, bytes) else b"")
            except orjson.JSONDecodeError:
                continue
            if not isinstance(doc, dict):
                continue
            gate.commands += 1
            word = doc.get("cmd")
            known = {c.word for c in gate.profile.commands}
            if word not in known:
                answer = {"id": doc.get("id"), "ok": False, "reason": f"unknown command {word!r}"}
            elif word == "open" and isinstance(gate.model, GateModel) and not gate.model.remote_open():
                answer = {"id": doc.get("id"), "ok": False, "reason": "locked down (tamper or duress)"}
            else:
                answer = {"id": doc.get("id"), "ok": True}
            async with asyncio.timeout(PUBLISH_TIMEOUT_S):
                await client.publish(f"{message.topic}/reply", orjson.dumps(answer), qos=1)

    async def run(self) -> None:
        """Publish until :meth:`stop`; reconnect with backoff. Cancellation is honoured too."""
        backoff = Backoff(initial=0.5, cap=15.0)
        tls = aiomqtt.TLSParameters() if self.url.tls else None
        while not self._stopping.is_set():
            try:
                async with aiomqtt.Client(self.url.host, self.url.port, username=self.url.username,
                                          password=self.url.password, identifier=self.client_id,
                                          tls_params=tls, timeout=10.0) as client:
                    commands = {g.command_topic: g for g in self.gates if g.command_topic and g.profile.commands}
                    if commands:
                        await client.subscribe([(t, 1) for t in commands])
                    self.connected.set()
                    backoff.reset()
                    log.info("gates connected to mqtt %s:%d as %s", self.url.host, self.url.port, self.client_id)
                    listener = asyncio.create_task(self._commands(client, commands)) if commands else None
                    try:
                        while not self._stopping.is_set():
                            await self._publish_all(client)
                            with contextlib.suppress(TimeoutError):
                                async with asyncio.timeout(self.tick_s):
                                    await self._stopping.wait()
                    finally:
                        if listener is not None:
                            listener.cancel()
                            with contextlib.suppress(asyncio.CancelledError, aiomqtt.MqttError):
                                await listener
            except (aiomqtt.MqttError, TimeoutError) as exc:
                self.connected.clear()
                task = asyncio.current_task()
                if task is not None and task.cancelling():
                    raise asyncio.CancelledError from exc   # aiomqtt turned our cancellation into an error
                self.errors += 1
                delay = backoff.next_delay()
                log.warning("gate publisher: mqtt %s (retrying in %.1fs)", exc, delay)
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._stopping.wait()
        self.connected.clear()
