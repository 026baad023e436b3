"""Small synchronous paho helpers for the broker security tests (MQTT v5: reason codes visible)."""

from __future__ import annotations

import ssl
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode


@dataclass
class Probe:
    client: mqtt.Client
    connected: threading.Event = field(default_factory=threading.Event)
    refused: ReasonCode | None = None
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    got: threading.Event = field(default_factory=threading.Event)
    suback: list[ReasonCode] = field(default_factory=list)
    subscribed: threading.Event = field(default_factory=threading.Event)
    puback: dict[int, ReasonCode] = field(default_factory=dict)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def connect(host: str, port: int, username: str | None, password: str | None, *,
            ca_file: Path | None = None, timeout: float = 5.0) -> Probe:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"sec-{uuid.uuid4().hex[:10]}",
                         protocol=mqtt.MQTTv5)
    probe = Probe(client)
    if username is not None:
        client.username_pw_set(username, password)
    if ca_file is not None:
        client.tls_set(ca_certs=str(ca_file), cert_reqs=ssl.CERT_REQUIRED)

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: ReasonCode, _p: Any) -> None:
        if reason.is_failure:
            probe.refused = reason
        probe.connected.set()

    def on_message(_c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        probe.messages.append((msg.topic, bytes(msg.payload)))
        probe.got.set()

    def on_subscribe(_c: mqtt.Client, _u: Any, _mid: int, codes: list[ReasonCode], _p: Any) -> None:
        probe.suback.extend(codes)
        probe.subscribed.set()

    def on_publish(_c: mqtt.Client, _u: Any, mid: int, reason: ReasonCode, _p: Any) -> None:
        probe.puback[mid] = reason

    client.on_connect, client.on_message = on_connect, on_message
    client.on_subscribe, client.on_publish = on_subscribe, on_publish
    client.connect(host, port, keepalive=10)
    client.loop_start()
    probe.connected.wait(timeout)
    return probe


def subscribe(probe: Probe, topic: str, timeout: float = 5.0) -> ReasonCode:
    probe.subscribed.clear()
    probe.suback.clear()
    probe.client.subscribe(topic, qos=1)
    assert probe.subscribed.wait(timeout), "no SUBACK"
    return probe.suback[0]


def publish(probe: Probe, topic: str, payload: bytes, timeout: float = 5.0) -> ReasonCode | None:
    info = probe.client.publish(topic, payload, qos=1)
    info.wait_for_publish(timeout)
    return probe.puback.get(info.mid)


def logs_in(host: str, port: int, username: str, password: str) -> bool:
    """Whether the broker accepts this account now (one CONNECT, then closed)."""
    probe = connect(host, port, username, password)
    try:
        return probe.connected.is_set() and probe.refused is None
    finally:
        probe.close()
