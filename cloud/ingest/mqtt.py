"""One MQTT v5 connection on asyncio: the transport, the handshake and the packet stream.

:class:`Connection` is an ``asyncio.Protocol``: ``data_received`` runs the
:class:`~cloud.ingest.packets.Parser` over everything that arrived and hands the owner *lists* —
all the PUBLISHes of the chunk in one call, the PUBACKs in another — so there is no thread, no
lock and no callback per message (why: :mod:`cloud.ingest.packets`). Writes are corked: every
:meth:`Connection.write` of one event-loop iteration goes out as one ``transport.write``, so the
PUBACKs of a committed batch and the confirmations after it cost one send.

:func:`open_connection` connects (TLS when the URL says ``mqtts``), sends CONNECT and waits for
CONNACK; every failure — refused TCP, TLS handshake, timeout, a CONNACK refusal (bad password,
not authorized) — is raised as :class:`~cloud.runtime.errors.BrokerError` (``from`` the cause),
with the broker's reason in the message. Used by the ingest consumer
(:mod:`cloud.ingest.consumer`) and by the bench's simulated gateways (``bench/ingest_fleet.py``).
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass

from cloud.ingest import packets
from cloud.ingest.packets import Control, Publish
from cloud.runtime.errors import BrokerError
from guanjia.core.settings import MqttUrl

CONNECT_TIMEOUT_S = 10.0


class BrokerRefused(BrokerError):
    """The broker answered CONNECT (or SUBSCRIBE) with a failure reason code."""

    def __init__(self, what: str, code: int) -> None:
        super().__init__(f"{what}: {packets.reason_text(code)}")
        self.code = code


@dataclass(slots=True, frozen=True)
class Session:
    """What CONNACK said."""

    present: bool
    receive_maximum: int
    """How many QoS 1 PUBLISHes this client may have unacknowledged at the broker."""
    max_packet: int


class Connection(asyncio.Protocol):
    """The protocol object of one connection. The owner sets :attr:`on_publishes` (a list per
    received chunk) and :attr:`on_pubacks` (packet ids) before data flows."""

    def __init__(self, max_packet: int = packets.MAX_PACKET_BYTES) -> None:
        self.parser = packets.Parser(max_packet)
        self.transport: asyncio.Transport | None = None
        self.on_publishes: Callable[[list[Publish]], None] = lambda items: None
        self.on_pubacks: Callable[[list[int]], None] = lambda pids: None
        self.room: Callable[[], int] = lambda: 1 << 30
        """How many more PUBLISHes the owner takes now; at 0 the connection stops reading
        (:attr:`paused`) until :meth:`resume`."""
        self.paused = False
        self.last_received = time.monotonic()
        self.error: BaseException | None = None
        """Why the connection ended (a :class:`~cloud.ingest.packets.PacketError`, the broker's
        DISCONNECT, the socket's error), or None for a clean close."""
        self._loop = asyncio.get_running_loop()
        self.closed: asyncio.Future[None] = self._loop.create_future()
        self.connack: asyncio.Future[Control] = self._loop.create_future()
        self._acks: dict[int, asyncio.Future[Control]] = {}
        self._out: list[bytes] = []

    # ------------------------------------------------------------------ asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.last_received = time.monotonic()
        self._parse(data)

    def _parse(self, data: bytes) -> None:
        try:
            publishes, controls = self.parser.feed(data, max(0, self.room()))
        except packets.PacketError as exc:
            self.abort(exc)
            return
        if publishes:
            self.on_publishes(publishes)
        if controls:
            self._controls(controls)
        if self.parser.blocked and not self.paused and self.transport is not None:
            # the owner holds all it may: the rest waits in our buffer, the socket and the broker
            self.paused = True
            self.transport.pause_reading()

    def resume(self) -> None:
        """The owner has room again: hand over what is buffered and read on."""
        if not self.paused or self.transport is None or self.transport.is_closing():
            return
        self.paused = False
        self.last_received = time.monotonic()  # the keep-alive's silence clock starts anew
        self._parse(b"")
        if not self.paused:
            self.transport.resume_reading()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.error is None and exc is not None:
            self.error = BrokerError(f"connection lost: {exc}")
            self.error.__cause__ = exc
        if not self.closed.done():
            self.closed.set_result(None)
        for future in (self.connack, *self._acks.values()):
            if not future.done():
                future.set_exception(self.error if self.error is not None else BrokerError("connection closed"))
                future.exception()  # nobody may await it any more: no "never retrieved" warning
        self._acks.clear()

    # ------------------------------------------------------------------ packets in
    def _controls(self, controls: list[Control]) -> None:
        acked: list[int] = []
        for control in controls:
            kind, pid, reason, _ = control
            if kind == packets.PUBACK:
                acked.append(pid)
            elif kind == packets.CONNACK:
                if not self.connack.done():
                    self.connack.set_result(control)
            elif kind in (packets.SUBACK, packets.UNSUBACK):
                future = self._acks.pop(pid, None)
                if future is not None and not future.done():
                    future.set_result(control)
            elif kind == packets.DISCONNECT:
                self.abort(BrokerRefused("the broker disconnected", reason))
                return
        if acked:
            self.on_pubacks(acked)

    # ------------------------------------------------------------------ packets out
    @property
    def is_open(self) -> bool:
        return self.transport is not None and not self.closed.done() and not self.transport.is_closing()

    def write(self, data: bytes) -> None:
        """Queue bytes; everything written in this loop iteration goes out in one ``transport.write``."""
        if not self._out:
            self._loop.call_soon(self._flush)
        self._out.append(data)

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(out[0] if len(out) == 1 else b"".join(out))

    async def request(self, pid: int, packet: bytes, timeout: float) -> Control:
        """Send SUBSCRIBE/UNSUBSCRIBE ``pid`` and wait for its acknowledgement."""
        future: asyncio.Future[Control] = self._loop.create_future()
        self._acks[pid] = future
        self.write(packet)
        async with asyncio.timeout(timeout):
            return await future

    def abort(self, error: BaseException | None = None) -> None:
        if error is not None and self.error is None:
            self.error = error
        if self.transport is not None:
            self.transport.abort()

    async def close(self, last: bytes | None = None, timeout: float = 2.0) -> None:
        """Send ``last`` (a DISCONNECT) and close, waiting briefly for the socket to go."""
        if self.transport is None:
            return
        if last is not None and not self.transport.is_closing():
            self._flush()
            self.transport.write(last)
        self.transport.close()
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(self.closed)
        except TimeoutError:
            self.transport.abort()


def tls_context(url: MqttUrl) -> ssl.SSLContext | None:
    """The system's default verifying context for ``mqtts://`` (as paho's ``tls_set()`` did)."""
    return ssl.create_default_context() if url.tls else None


async def open_connection(url: MqttUrl, client_id: str, *, keepalive: int, clean_start: bool,
                          session_expiry: int, receive_maximum: int,
                          ssl_context: ssl.SSLContext | None = None,
                          timeout: float = CONNECT_TIMEOUT_S,
                          on_publishes: Callable[[list[Publish]], None] | None = None,
                          on_pubacks: Callable[[list[int]], None] | None = None) -> tuple[Connection, Session]:
    """Connect and complete the MQTT handshake; raises :class:`BrokerError` (or
    :class:`BrokerRefused`) with the reason. The handlers are set before the first byte arrives:
    a persistent session's queued messages can come in the same chunk as the CONNACK."""

    def protocol() -> Connection:
        conn = Connection()
        if on_publishes is not None:
            conn.on_publishes = on_publishes
        if on_pubacks is not None:
            conn.on_pubacks = on_pubacks
        return conn

    loop = asyncio.get_running_loop()
    context = ssl_context if ssl_context is not None else tls_context(url)
    where = f"{url.host}:{url.port}"
    try:
        async with asyncio.timeout(timeout):
            _, conn = await loop.create_connection(protocol, url.host, url.port, ssl=context,
                                                   server_hostname=url.host if context else None)
    except ssl.SSLError as exc:
        raise BrokerError(f"TLS handshake with {where} failed: {exc}") from exc
    except TimeoutError as exc:
        raise BrokerError(f"connecting to {where} timed out after {timeout:.0f}s") from exc
    except OSError as exc:
        what = "TLS handshake with" if context is not None else "cannot connect to"
        raise BrokerError(f"{what} {where} failed: {exc.strerror or exc}") from exc
    conn.write(packets.connect(client_id, keepalive=keepalive, clean_start=clean_start,
                               session_expiry=session_expiry, receive_maximum=receive_maximum,
                               username=url.username, password=url.password, max_packet=conn.parser.max_packet))
    try:
        async with asyncio.timeout(timeout):
            _, present, reason, raw = await conn.connack
    except TimeoutError as exc:
        conn.abort()
        raise BrokerError(f"no CONNACK from {where} within {timeout:.0f}s") from exc
    except BrokerError as exc:
        conn.abort()
        cause = conn.error if conn.error is not None else exc
        raise BrokerError(f"{where} closed the connection during the handshake: {cause}") from cause
    if reason >= 0x80:
        conn.abort()
        raise BrokerRefused(f"{where} refused {client_id}", reason)
    try:
        props = packets.connack_properties(raw)
    except packets.PacketError:
        conn.abort()
        raise
    return conn, Session(bool(present), props.get(0x21, 65_535) or 65_535, props.get(0x27, 0))
