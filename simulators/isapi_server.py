"""ISAPI-style access controllers: an HTTP alert stream per simulated door, with digest auth and faults.

Each controller listens on its own TCP port (a real controller has its own IP) and serves
``GET /ISAPI/Event/notification/alertStream``: the first request gets ``401`` with a digest
challenge (RFC 7616, MD5, qop=auth, as Hikvision firmware does), the repeated request with a valid
digest gets a never-ending ``multipart/mixed; boundary=boundary`` answer, one JSON part per event:
passages counted by the gate physics become verify-pass events (card reader 1 = in, 2 = out), the
gate's faults become door-forced / held-open / tamper / duress alarms and their resumes, and a
heartbeat part goes out every ``heartbeat_s`` wall seconds while nothing happens.

Why a hand-written HTTP server: the stream faults the edge must survive — a connection cut in the
middle of a part, garbage between parts — need control over the socket that an ASGI server hides
(it would finish or chunk-frame the response). The server speaks just enough HTTP/1.1 for one GET.

Remote control: ``PUT /ISAPI/AccessControl/RemoteControl/door/{n}`` with a ``RemoteControlDoor``
document (``<cmd>open</cmd>``) behind the same digest auth opens the gate for a few seconds (event
``5:25`` door opened follows on the stream) and answers a ``ResponseStatus`` (``statusCode`` 1); a
controller locked down by tamper or duress answers ``statusCode`` 4, ``subStatusCode``
``deviceLocked``; an unknown door or command ``badParameters``.

Faults (set by the fleet runner): ``offline`` (connections are cut and new ones closed at once),
``stream_drop`` (the stream is cut in the middle of a part every ``every_s`` seconds, default 5),
``garbage_frames`` (with ``probability`` per tick, a garbage part: broken JSON, bad headers or
stray bytes between parts).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import orjson

from device_profiles import Profile
from simulators.physics.gate import GateModel

log = logging.getLogger(__name__)

BOUNDARY = "boundary"
REALM = "DS-K2600 simulated"
CHINA = timezone(timedelta(hours=8))
MAX_EVENTS_PER_TICK = 20
ALARMS = {  # gate fault -> (major, minor) of the alarm, and of its resume (None: no resume event)
    "forced_open": ((5, 27), (5, 26)),
    "held_open": ((5, 28), (5, 26)),
    "tamper": ((1, 1028), (1, 1029)),
    "duress": ((1, 1034), None),
}
GARBAGE = (
    b"--boundary\r\nContent-Type: application/json\r\n\r\n{\"eventType\": \"AccessControllerEv\r\n",
    b"--boundary\r\nthis is not a header line\r\n\r\n{}\r\n",
    b"\x00\xff\xfe garbage between parts \x13\x37\r\n",
    b"--boundary\r\nContent-Type: application/json\r\nContent-Length: banana\r\n\r\n{}\r\n",
)

_PARAM = re.compile(r'(\w+)=(?:"([^"]*)"|([^,\s]*))')
_REMOTE = re.compile(r"^/ISAPI/AccessControl/RemoteControl/door/(\d+)$")
_CMD = re.compile(rb"<cmd>\s*([A-Za-z]+)\s*</cmd>")


def response_status(code: int, sub: str, text: str) -> bytes:
    """An ISAPI ``ResponseStatus`` document."""
    return (f'<?xml version="1.0" encoding="UTF-8"?><ResponseStatus version="2.0" '
            f'xmlns="http://www.isapi.org/ver20/XMLSchema"><requestURL></requestURL><statusCode>{code}</statusCode>'
            f"<statusString>{text}</statusString><subStatusCode>{sub}</subStatusCode></ResponseStatus>").encode()


def digest_params(header: str) -> dict[str, str]:
    scheme, _, rest = header.partition(" ")
    if scheme.lower() != "digest":
        return {}
    return {m.group(1).lower(): m.group(2) if m.group(2) is not None else m.group(3) for m in _PARAM.finditer(rest)}


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


@dataclass(slots=True)
class IsapiController:
    """One simulated controller: its physics, credentials, event log and communication faults."""

    device_id: str
    profile: Profile
    model: GateModel
    username: str = "admin"
    password: str = "Hik12345"
    heartbeat_s: float = 10.0
    port: int = 0
    offline: bool = False
    drop_every_s: float | None = None
    garbage_probability: float = 0.0
    serial: int = 0
    streams: int = 0
    remote_controls: int = 0
    refused: int = 0
    sent: int = 0
    garbage_sent: int = 0
    nonces: set[str] = field(default_factory=set)
    remote_open: bool = False
    """the door is open because of a remote control: its opening and closing are stream events"""
    _last: dict[str, Any] = field(default_factory=dict)
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def path(self) -> str:
        return self.profile.isapi.path if self.profile.isapi else "/ISAPI/Event/notification/alertStream"

    @property
    def status_path(self) -> str:
        status = self.profile.isapi.status if self.profile.isapi else None
        return (status.path if status else "/ISAPI/AccessControl/AcsWorkStatus?format=json").split("?")[0]

    def work_status(self) -> bytes:
        """The controller's AcsWorkStatus document (door contact, lock, housing switch)."""
        values = self.model.values()
        door = 1 if values.get("door_state") else 0
        return orjson.dumps({"AcsWorkStatus": {
            "doorLockStatus": [1 if door and not values.get("forced_open") else 0],
            "doorStatus": [1 if door else 4], "magneticStatus": [door],
            "hostAntiDismantleStatus": "open" if values.get("tamper") else "close",
            "cardReaderOnlineStatus": [1, 2], "antiSneakStatus": "close"}})

    def authorised(self, header: str | None, method: str, uri: str) -> bool:
        params = digest_params(header or "")
        if not params or params.get("nonce") not in self.nonces or params.get("username") != self.username:
            return False
        ha1 = _md5(f"{self.username}:{REALM}:{self.password}")
        ha2 = _md5(f"{method}:{params.get('uri', uri)}")
        if params.get("qop"):
            expected = _md5(f"{ha1}:{params['nonce']}:{params.get('nc', '')}:{params.get('cnonce', '')}:"
                            f"{params['qop']}:{ha2}")
        else:
            expected = _md5(f"{ha1}:{params['nonce']}:{ha2}")
        return secrets.compare_digest(expected, params.get("response", ""))

    def remote_control(self, door: int, body: bytes) -> bytes:
        """Answer a RemoteControl request (see the module docstring)."""
        self.remote_controls += 1
        cmd = _CMD.search(body)
        if door != 1 or cmd is None or cmd.group(1) not in (b"open", b"close"):
            return response_status(6, "badParameters", "Invalid Content")
        if cmd.group(1) == b"open":
            if not self.model.remote_open():
                return response_status(4, "deviceLocked", "Invalid Operation")
            self.remote_open = True
        return response_status(1, "ok", "OK")

    def challenge(self) -> str:
        nonce = secrets.token_hex(16)
        self.nonces.add(nonce)
        if len(self.nonces) > 64:
            self.nonces.discard(next(iter(self.nonces)))
        return f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", stale="FALSE"'

    # ------------------------------------------------------------------ events from the physics
    def _now_text(self) -> str:
        t = self.model.device_time() + self.model.clock_skew_s
        return datetime.fromtimestamp(t, UTC).astimezone(CHINA).isoformat(timespec="seconds")

    def _event(self, major: int, minor: int, reader: int = 1) -> bytes:
        self.serial += 1
        return orjson.dumps({
            "ipAddress": "127.0.0.1", "portNo": self.port, "protocol": "HTTP", "channelID": 1,
            "dateTime": self._now_text(), "activePostCount": 1, "eventType": "AccessControllerEvent",
            "eventState": "active", "eventDescription": "Access Controller Event",
            "AccessControllerEvent": {"deviceName": self.device_id, "majorEventType": major, "subEventType": minor,
                                      "doorNo": 1, "cardReaderNo": reader, "serialNo": self.serial}})

    def heartbeat(self) -> bytes:
        return orjson.dumps({"ipAddress": "127.0.0.1", "dateTime": self._now_text(), "eventType": "heartBeat",
                             "eventState": "active"})

    def due_events(self) -> list[bytes]:
        """Events since the last call, derived from the gate model's counters and faults (the first
        call only takes the state: what happened before the controller started is not an event)."""
        values = self.model.values()
        last, self._last = self._last, dict(values)
        if not last:
            return []
        out: list[bytes] = []
        for name, reader in (("passages_in", 1), ("passages_out", 2)):
            passed = (int(values[name]) - int(last[name])) & 0xFFFFFFFF
            out.extend(self._event(5, 75, reader) for _ in range(min(passed, MAX_EVENTS_PER_TICK)))
        door, was = int(values.get("door_state") or 0), int(last.get("door_state") or 0)
        if self.remote_open and door and not was:
            out.append(self._event(5, 25))
        elif self.remote_open and was and not door:
            out.append(self._event(5, 26))
            self.remote_open = False
        for fault, (alarm, resume) in ALARMS.items():
            now, before = bool(values.get(fault)), bool(last.get(fault))
            if now and not before:
                out.append(self._event(*alarm))
            elif before and not now and resume is not None:
                out.append(self._event(*resume))
        return out

    def cut_all(self) -> None:
        for writer in list(self._writers):
            with contextlib.suppress(Exception):
                writer.transport.abort()


def part(body: bytes) -> bytes:
    return (f"--{BOUNDARY}\r\nContent-Type: application/json; charset=\"UTF-8\"\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body + b"\r\n"


class IsapiServer:
    """Serves one controller on ``host:port`` until :meth:`stop`."""

    def __init__(self, controller: IsapiController, host: str = "127.0.0.1", port: int = 0, *,
                 tick_s: float = 0.5, seed: int = 0) -> None:
        self.controller = controller
        self.host = host
        self.port = port
        self.tick_s = tick_s
        self.rng = random.Random(seed)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._stopping = False

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        self.controller.port = self.port

    async def stop(self) -> None:
        """Cut the streams and let the handlers return (cancelling them would make asyncio's stream
        callback log the cancellation as an error)."""
        self._stopping = True
        self.controller.cut_all()
        if self._server is not None:
            self._server.close()
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        c = self.controller
        c._writers.add(writer)
        try:
            if c.offline:
                c.refused += 1
                return
            while not self._stopping:   # keep-alive: the 401 round and the stream may share one connection
                async with asyncio.timeout(15):
                    head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, uri, *_ = [*lines[0].split(" "), "", ""][:3]
                headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
                length = headers.get("content-length", "0")
                body = await reader.readexactly(int(length)) if length.isdigit() and int(length) <= 65536 else b""
                remote = _REMOTE.match(uri.split("?")[0]) if method == "PUT" else None
                if remote is None and (method != "GET" or uri.split("?")[0] not in (c.path, c.status_path)):
                    writer.write(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                    await writer.drain()
                    return
                if not c.authorised(headers.get("authorization"), method, uri):
                    writer.write((f"HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: {c.challenge()}\r\n"
                                  "Content-Length: 0\r\n\r\n").encode())
                    await writer.drain()
                    continue
                if remote is not None:
                    answer = c.remote_control(int(remote.group(1)), body)
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: "
                                 + str(len(answer)).encode() + b"\r\n\r\n" + answer)
                    await writer.drain()
                    continue
                if uri.split("?")[0] == c.status_path:
                    body = c.work_status()
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                                 + str(len(body)).encode() + b"\r\n\r\n" + body)
                    await writer.drain()
                    continue
                await self._stream(writer)
                return
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
            return
        finally:
            c._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.transport.abort() if c.offline else writer.close()
            if task is not None:
                self._tasks.discard(task)

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        c = self.controller
        c.streams += 1
        writer.write(f"HTTP/1.1 200 OK\r\nContent-Type: multipart/mixed; boundary={BOUNDARY}\r\n"
                     "Connection: close\r\n\r\n".encode())
        await writer.drain()
        started = time.monotonic()
        last_sent = started - c.heartbeat_s   # a first heartbeat at once: the subscriber sees the stream live
        c.due_events()   # events of the outage are logged (serial numbers used) but not replayed
        while not c.offline and not self._stopping:
            await asyncio.sleep(self.tick_s)
            now = time.monotonic()
            chunks = [part(body) for body in c.due_events()]
            if not chunks and now - last_sent >= c.heartbeat_s:
                chunks.append(part(c.heartbeat()))
            if c.garbage_probability and self.rng.random() < c.garbage_probability:
                c.garbage_sent += 1
                chunks.insert(0, self.rng.choice(GARBAGE))
            if c.drop_every_s is not None and now - started >= c.drop_every_s:
                half = part(c.heartbeat())
                writer.write(half[: len(half) // 2])
                await writer.drain()
                writer.transport.abort()
                return
            if chunks:
                writer.write(b"".join(chunks))
                await writer.drain()
                c.sent += len(chunks)
                last_sent = now
