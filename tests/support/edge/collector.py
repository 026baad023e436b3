"""A cloud-side test subscriber: a persistent MQTT session that survives broker restarts and records
every sequenced message of one gateway (decoded with the wire contract), status and replies.

With ``confirm`` (default) it plays the ingest service's part of the end-to-end ack: each received
batch is answered with a ``stored`` confirmation on the gateway's ``cmd`` topic (docs/wire.md)."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import aiomqtt
import orjson

from guanjia.core.settings import MqttUrl
from guanjia.core.wire import Sequenced, decode, gateway_prefix, parse_topic, topic


class Collector:
    def __init__(self, url: str, community: str, gateway: str, *, confirm: bool = True) -> None:
        self.url = MqttUrl.parse(url)
        self.confirm = confirm
        self.cmd_topic = topic(community, gateway, "cmd")
        self.prefix = gateway_prefix(community, gateway)
        self.client_id = f"collector-{uuid.uuid4().hex[:8]}"
        self.envelopes: list[Sequenced] = []
        self.status: list[dict[str, Any]] = []
        self.replies: list[dict[str, Any]] = []
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._changed = asyncio.Event()

    async def __aenter__(self) -> Collector:
        self._task = asyncio.create_task(self._run())
        async with asyncio.timeout(10):
            await self._ready.wait()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(self.url.host, self.url.port, username=self.url.username,
                                          password=self.url.password, identifier=self.client_id,
                                          clean_session=False) as client:
                    await client.subscribe(f"{self.prefix}/#", qos=1)
                    self._ready.set()
                    async for message in client.messages:
                        seq = self._on(message.topic.value, bytes(message.payload) if isinstance(
                            message.payload, bytes | bytearray) else str(message.payload).encode())
                        if seq is not None and self.confirm:
                            await client.publish(self.cmd_topic, orjson.dumps(
                                {"schema": 1, "kind": "stored", "seqs": [[seq, seq]], "ts": 0}), qos=1)
            except aiomqtt.MqttError:
                await asyncio.sleep(0.2)

    def _on(self, topic: str, payload: bytes) -> int | None:
        kind = topic.removeprefix(self.prefix + "/")
        seq: int | None = None
        if kind == "status":
            self.status.append(orjson.loads(payload))
        elif kind == "cmd/reply":
            self.replies.append(orjson.loads(payload))
        elif kind in ("telemetry", "alarms", "events"):
            envelope = decode(payload, parse_topic(topic))
            self.envelopes.append(envelope)
            seq = envelope.seq
        self._changed.set()
        return seq

    async def publish(self, topic: str, payload: bytes) -> None:
        async with aiomqtt.Client(self.url.host, self.url.port, username=self.url.username,
                                  password=self.url.password) as client:
            await client.publish(topic, payload, qos=1)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.2):
                        await self._changed.wait()

    def of(self, kind: str) -> list[Sequenced]:
        return [e for e in self.envelopes if e.kind == kind]

    def items(self, kind: str) -> list[Mapping[str, Any]]:
        return [item for e in self.of(kind) for item in e.items]

    def check_sequence(self, upto: int, still_stored: set[int] = frozenset()) -> None:  # type: ignore[assignment]
        """Every seq 1..upto arrived (or is still in the outbox); repeated seqs carry the same items."""
        seen: dict[int, Sequence[Mapping[str, Any]]] = {}
        for env in self.envelopes:
            if env.seq in seen:
                assert seen[env.seq] == env.items, f"seq {env.seq} redelivered with different content"
            seen[env.seq] = env.items
        missing = set(range(1, upto + 1)) - set(seen) - still_stored
        assert not missing, f"lost seqs: {sorted(missing)[:20]} (of {len(missing)})"
