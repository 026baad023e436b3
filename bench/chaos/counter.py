"""A broker-side witness: points per telemetry seq, per gateway, as the edge published them.

It only sizes lost messages in readings (the reconciliation itself is by seq, see
:mod:`bench.chaos.reconcile`). Persistent session (clean_session false, fixed client id), so a
broker restart with its store kept does not make it miss anything; paho reconnects on its own.
"""

from __future__ import annotations

import threading
from typing import Any

import orjson
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from guanjia.core.settings import MqttUrl


class Counter:
    def __init__(self, url: str, client_id: str = "chaos-counter") -> None:
        u = MqttUrl.parse(url)
        self.seqs: dict[tuple[str, str], dict[int, int]] = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        self.client.username_pw_set(u.username, u.password)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: c.subscribe("guanjia/v1/+/+/telemetry", qos=1)
        self.client.reconnect_delay_set(1, 2)
        self.client.connect(u.host, u.port, keepalive=10)
        self.client.loop_start()

    def _on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        parts = msg.topic.split("/")
        try:
            doc = orjson.loads(msg.payload)
            points = sum(len(r.get("values", {})) for r in doc.get("readings", []))
            seq = int(doc["seq"])
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return
        with self.lock:
            self.seqs.setdefault((parts[2], parts[3]), {})[seq] = points

    def for_gateway(self, community: str, gateway: str) -> dict[int, int]:
        with self.lock:
            return dict(self.seqs.get((community, gateway), {}))

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
