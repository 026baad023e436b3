"""MQTT v5 packets for the ingest receive path: encoding the few the client sends, and a parser
that turns a byte stream into whole packets, every complete one in the buffer in one pass.

Why written here (issue 21): the worker's receive path through paho-mqtt cost ~140 µs per
message on the bench machine — paho parses each packet in Python on its own network thread,
builds an ``MQTTMessage``, takes its locks and calls back per message, and the message then has
to cross to the event loop. No kept library receives without that per-message machinery:
aiomqtt wraps paho; gmqtt and amqtt parse per packet into per-message objects and callbacks
(and gmqtt acks from its own handler, before our commit). The subset the worker needs is small
and fixed — CONNECT/CONNACK, SUBSCRIBE/SUBACK, UNSUBSCRIBE/UNSUBACK, QoS 0/1 PUBLISH both ways,
PUBACK, PINGREQ/PINGRESP, DISCONNECT — so this module does exactly that, and
:mod:`cloud.ingest.mqtt` runs it on an ``asyncio.Protocol``.

What is refused (:class:`PacketError`, the connection is dropped and re-established; the broker
redelivers whatever was not acknowledged): a remaining length over four bytes, a packet over the
``Maximum Packet Size`` this client announced, QoS 3, a PUBLISH whose topic or properties overrun
the packet, a zero-length topic (topic aliases are never enabled: ``Topic Alias Maximum`` is
left at 0), and packet types a client never receives (QoS 2 flow, AUTH, a server's CONNECT).
A topic that is not valid UTF-8 is decoded with replacement characters instead: the message
then fails topic parsing in :mod:`cloud.ingest.prepare` and becomes a dead letter, where a
reconnect would only get the same message again.
"""

from __future__ import annotations

from typing import Final

from cloud.runtime.errors import BrokerError

CONNECT: Final = 1
CONNACK: Final = 2
PUBLISH: Final = 3
PUBACK: Final = 4
SUBSCRIBE: Final = 8
SUBACK: Final = 9
UNSUBSCRIBE: Final = 10
UNSUBACK: Final = 11
PINGREQ: Final = 12
PINGRESP: Final = 13
DISCONNECT: Final = 14

MAX_PACKET_BYTES: Final = 16 << 20
"""Announced to the broker (``Maximum Packet Size``), so it never sends a larger packet; a wire
payload is at most 1 MiB (:data:`guanjia.core.wire.MAX_PAYLOAD_BYTES`), a larger one is still
delivered and dead-lettered as ``too_large``."""

_TOPIC_CACHE_MAX: Final = 100_000

# v5 property identifiers used here
_SESSION_EXPIRY: Final = 0x11
_RECEIVE_MAXIMUM: Final = 0x21
_MAXIMUM_PACKET_SIZE: Final = 0x27
_REASON_STRING: Final = 0x1F

REASONS: Final = {
    0x80: "unspecified error", 0x81: "malformed packet", 0x82: "protocol error",
    0x83: "implementation specific error", 0x84: "unsupported protocol version",
    0x85: "client identifier not valid", 0x86: "bad user name or password", 0x87: "not authorized",
    0x88: "server unavailable", 0x89: "server busy", 0x8A: "banned", 0x8B: "server shutting down",
    0x8C: "bad authentication method", 0x8D: "keep alive timeout", 0x8E: "session taken over",
    0x8F: "topic filter invalid", 0x90: "topic name invalid", 0x93: "receive maximum exceeded",
    0x95: "packet too large", 0x97: "quota exceeded", 0x9C: "use another server", 0x9D: "server moved",
    0x9F: "connection rate exceeded",
}


def reason_text(code: int) -> str:
    return f"{REASONS.get(code, 'reason')} (0x{code:02x})"


class PacketError(BrokerError):
    """The broker sent bytes that are not a packet this client accepts (see the module docstring)."""


def varint(n: int) -> bytes:
    """MQTT variable byte integer."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | 0x80 if n else byte)
        if not n:
            return bytes(out)


def _string(s: str | bytes) -> bytes:
    raw = s.encode() if isinstance(s, str) else s
    return len(raw).to_bytes(2, "big") + raw


def _packet(first: int, body: bytes) -> bytes:
    return bytes((first,)) + varint(len(body)) + body


def connect(client_id: str, *, keepalive: int, clean_start: bool, session_expiry: int, receive_maximum: int,
            username: str | None = None, password: str | None = None,
            max_packet: int = MAX_PACKET_BYTES) -> bytes:
    flags = 0x02 if clean_start else 0
    if username is not None:
        flags |= 0x80
        if password is not None:
            flags |= 0x40
    props = (bytes((_SESSION_EXPIRY,)) + session_expiry.to_bytes(4, "big")
             + bytes((_RECEIVE_MAXIMUM,)) + receive_maximum.to_bytes(2, "big")
             + bytes((_MAXIMUM_PACKET_SIZE,)) + max_packet.to_bytes(4, "big"))
    body = _string("MQTT") + bytes((5, flags)) + keepalive.to_bytes(2, "big") + varint(len(props)) + props
    body += _string(client_id)
    if username is not None:
        body += _string(username)
        if password is not None:
            body += _string(password)
    return _packet(CONNECT << 4, body)


def subscribe(pid: int, topics: list[str], qos: int = 1) -> bytes:
    body = pid.to_bytes(2, "big") + b"\x00" + b"".join(_string(t) + bytes((qos,)) for t in topics)
    return _packet(SUBSCRIBE << 4 | 0x02, body)


def unsubscribe(pid: int, topics: list[str]) -> bytes:
    return _packet(UNSUBSCRIBE << 4 | 0x02, pid.to_bytes(2, "big") + b"\x00" + b"".join(_string(t) for t in topics))


def disconnect(session_expiry: int | None = None) -> bytes:
    """Normal disconnection; with ``session_expiry`` (0: end the session now) as a property."""
    if session_expiry is None:
        return b"\xe0\x00"
    props = bytes((_SESSION_EXPIRY,)) + session_expiry.to_bytes(4, "big")
    return _packet(DISCONNECT << 4, b"\x00" + varint(len(props)) + props)


PINGREQ_PACKET: Final = b"\xc0\x00"


def topic_prefix(topic: str) -> bytes:
    """The topic part of a PUBLISH (length + UTF-8), encoded once per destination and reused."""
    return _string(topic)


def publish(topic: bytes, payload: bytes, pid: int = 0, qos: int = 1, *, dup: bool = False,
            retain: bool = False, expiry_s: int = 0) -> bytes:
    """A PUBLISH; ``topic`` from :func:`topic_prefix`. Properties: none, or the Message Expiry
    Interval (0x02) when ``expiry_s`` > 0 (the ingest's retained ``behind`` status)."""
    head = topic + pid.to_bytes(2, "big") if qos else topic
    props = b"\x05\x02" + expiry_s.to_bytes(4, "big") if expiry_s > 0 else b"\x00"
    flags = PUBLISH << 4 | qos << 1 | (0x08 if dup else 0) | (0x01 if retain else 0)
    return bytes((flags,)) + varint(len(head) + len(props) + len(payload)) + head + props + payload


def as_dup(packet: bytes) -> bytes:
    """The same PUBLISH with its DUP flag set (a resend after a reconnect)."""
    return bytes((packet[0] | 0x08,)) + packet[1:]


_PUBACKS: tuple[bytes, ...] = ()


def pubacks(pids: list[int]) -> bytes:
    """PUBACKs (success, no properties: 4 bytes each) of ``pids``, as one write."""
    global _PUBACKS  # built on first use: 65,536 ready packets (~3 MB), joined per commit
    if not _PUBACKS:
        _PUBACKS = tuple(bytes((PUBACK << 4, 2, pid >> 8, pid & 0xFF)) for pid in range(65_536))
    table = _PUBACKS
    return b"".join([table[pid] for pid in pids])


Publish = tuple[str, bytes, int, int]
"""A received PUBLISH: (topic, payload, packet id (0 for QoS 0), qos)."""

Control = tuple[int, int, int, bytes]
"""Any other received packet: (type, packet id or CONNACK's session-present flag, reason code,
extra) — ``extra`` is SUBACK's reason codes, CONNACK's raw properties, else empty."""


def _varint_at(buf: bytes, i: int, end: int) -> tuple[int, int]:
    """(value, index after it) of a variable byte integer inside a packet that ends at ``end``."""
    value, shift = 0, 0
    while True:
        if i >= end or shift > 21:
            raise PacketError("malformed variable byte integer")
        byte = buf[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def connack_properties(raw: bytes) -> dict[int, int]:
    """The integer properties of a CONNACK (Receive Maximum, Maximum Packet Size, …)."""
    out: dict[int, int] = {}
    i, end = 0, len(raw)
    widths = {0x01: 1, 0x11: 4, 0x21: 2, 0x24: 1, 0x25: 1, 0x27: 4, 0x22: 2, 0x28: 1, 0x29: 1, 0x2A: 1, 0x13: 2}
    while i < end:
        ident, i = _varint_at(raw, i, end)
        width = widths.get(ident)
        if width is not None:
            out[ident] = int.from_bytes(raw[i:i + width], "big")
            i += width
        elif ident in (0x12, 0x15, 0x16, 0x1A, 0x1C, 0x1F):  # strings / binary: assigned id, auth data …
            i += 2 + int.from_bytes(raw[i:i + 2], "big")
        elif ident == 0x26:  # user property: two strings
            i += 2 + int.from_bytes(raw[i:i + 2], "big")
            i += 2 + int.from_bytes(raw[i:i + 2], "big")
        else:
            raise PacketError(f"unknown CONNACK property 0x{ident:02x}")
    return out


class Parser:
    """Bytes in, whole packets out. :meth:`feed` keeps an incomplete tail for the next call, so
    any split of a stream into chunks yields the same packets (tests/cloud/ingest/test_packets.py)."""

    __slots__ = ("_tail", "_topics", "blocked", "max_packet")

    def __init__(self, max_packet: int = MAX_PACKET_BYTES) -> None:
        self.max_packet = max_packet
        self.blocked = False
        """The last :meth:`feed` stopped at a PUBLISH over its ``max_publishes``: it is kept."""
        self._tail = b""
        self._topics: dict[bytes, str] = {}
        """Topic bytes → str: a gateway's topic repeats with every message, decoded once."""

    def feed(self, data: bytes, max_publishes: int = 1 << 30) -> tuple[list[Publish], list[Control]]:
        """The whole packets of the stream so far; at most ``max_publishes`` PUBLISHes (the
        rest stay buffered, :attr:`blocked` says so, the next call continues there)."""
        self.blocked = False
        buf = self._tail + data if self._tail else data
        n = len(buf)
        pos = 0
        publishes: list[Publish] = []
        controls: list[Control] = []
        topics = self._topics
        while n - pos >= 2:
            first = buf[pos]
            # remaining length: up to four bytes
            i = pos + 1
            byte = buf[i]
            length = byte & 0x7F
            shift = 7
            while byte & 0x80:
                i += 1
                if shift > 21:
                    raise PacketError("remaining length longer than four bytes")
                if i >= n:
                    break
                byte = buf[i]
                length |= (byte & 0x7F) << shift
                shift += 7
            else:
                i += 1
                if length > self.max_packet:
                    raise PacketError(f"packet of {length} bytes over the announced maximum {self.max_packet}")
                end = i + length
                if end > n:
                    break
                kind = first >> 4
                if kind == PUBLISH:
                    if len(publishes) >= max_publishes:
                        self.blocked = True
                        break
                    qos = (first >> 1) & 3
                    if qos == 3:
                        raise PacketError("PUBLISH with QoS 3")
                    if end - i < 2:
                        raise PacketError("PUBLISH without a topic")
                    j = i + 2 + ((buf[i] << 8) | buf[i + 1])
                    if j > end:
                        raise PacketError("PUBLISH topic overruns its length")
                    raw_topic = buf[i + 2:j]
                    if not raw_topic:
                        raise PacketError("PUBLISH with an empty topic (aliases are not enabled)")
                    if qos:
                        if j + 2 > end:
                            raise PacketError("PUBLISH overruns its length")
                        pid = (buf[j] << 8) | buf[j + 1]
                        j += 2
                    else:
                        pid = 0
                    if j < end and buf[j] < 0x80:  # the usual one-byte property length
                        j += 1 + buf[j]
                    else:
                        props, j = _varint_at(buf, j, end)
                        j += props
                    if j > end:
                        raise PacketError("PUBLISH overruns its length")
                    topic = topics.get(raw_topic)
                    if topic is None:
                        if len(topics) >= _TOPIC_CACHE_MAX:
                            topics.clear()
                        topic = topics[raw_topic] = raw_topic.decode("utf-8", "replace")
                    publishes.append((topic, buf[j:end], pid, qos))
                else:
                    controls.append(_control(kind, buf, i, end))
                pos = end
                continue
            break  # the remaining length itself is incomplete
        self._tail = buf[pos:] if pos < n else b""
        return publishes, controls


def _control(kind: int, buf: bytes, i: int, end: int) -> Control:
    size = end - i
    if kind in (PUBACK, UNSUBACK, SUBACK):
        if size < 2:
            raise PacketError(f"packet type {kind} too short")
        pid = (buf[i] << 8) | buf[i + 1]
        if kind == PUBACK:
            return kind, pid, buf[i + 2] if size > 2 else 0, b""
        props, j = _varint_at(buf, i + 2, end) if size > 2 else (0, end)
        return kind, pid, 0, bytes(buf[j + props:end])
    if kind == CONNACK:
        if size < 2:
            raise PacketError("CONNACK too short")
        props, j = _varint_at(buf, i + 2, end) if size > 2 else (0, end)
        if j + props > end:
            raise PacketError("CONNACK properties overrun the packet")
        return kind, buf[i] & 1, buf[i + 1], bytes(buf[j:j + props])
    if kind == PINGRESP:
        return kind, 0, 0, b""
    if kind == DISCONNECT:
        return kind, 0, buf[i] if size else 0, b""
    raise PacketError(f"unexpected packet type {kind}")
