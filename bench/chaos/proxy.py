"""A TCP fault proxy between the edge agent and the broker (the kind psycopg's own tests use).

Why a proxy and not ``tc netem``: it needs no privileges, it runs inside the harness process, and
it can do the three things a plant-room uplink does — add latency, silently swallow traffic for a
while (a blackhole: the TCP connection stays up, nothing gets through, keepalives expire) and cut
every connection (a router reboot) — on one link only, without touching the rest of the stack.

It runs its own asyncio loop in a daemon thread; every knob is a plain attribute read per chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import threading
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Faults:
    """What the proxy does to the bytes, changed at any time from any thread."""

    delay_s: float = 0.0
    jitter_s: float = 0.0
    blackhole: bool = False
    """Hold every byte (both directions) until cleared: a link that is up but passes nothing."""
    refuse: bool = False
    """Close new connections at once (the far side is down)."""
    cut_probability: float = 0.0
    """Per forwarded chunk, the chance of cutting both sockets (a lossy link that drops sessions)."""


@dataclass(slots=True)
class TcpProxy:
    target_host: str
    target_port: int
    listen_host: str = "127.0.0.1"
    faults: Faults = field(default_factory=Faults)
    seed: int = 1
    port: int = 0
    connections: int = 0
    cuts: int = 0
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: asyncio.Server | None = None
    _writers: set[asyncio.StreamWriter] = field(default_factory=set)
    _ready: threading.Event = field(default_factory=threading.Event)
    _rng: random.Random = field(default_factory=random.Random)

    def start(self) -> TcpProxy:
        self._rng.seed(self.seed)
        self._thread = threading.Thread(target=self._main, name="chaos-proxy", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        loop.run_until_complete(self._serve())
        loop.run_forever()
        loop.close()

    async def _serve(self) -> None:
        self._server = await asyncio.start_server(self._handle, self.listen_host, self.port,
                                                  family=socket.AF_INET)
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.faults.refuse:
            writer.close()
            return
        try:
            async with asyncio.timeout(5):
                up_reader, up_writer = await asyncio.open_connection(self.target_host, self.target_port)
        except (OSError, TimeoutError):
            writer.close()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        try:
            await asyncio.gather(self._pipe(reader, up_writer), self._pipe(up_reader, writer))
        finally:
            for w in (writer, up_writer):
                self._writers.discard(w)
                w.close()

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                f = self.faults
                while f.blackhole and not writer.is_closing():
                    await asyncio.sleep(0.05)
                delay = f.delay_s + (self._rng.uniform(0, f.jitter_s) if f.jitter_s else 0.0)
                if delay:
                    await asyncio.sleep(delay)
                if f.cut_probability and self._rng.random() < f.cut_probability:
                    self.cuts += 1
                    self._abort_all()
                    return
                writer.write(chunk)
                await writer.drain()
        except (OSError, ConnectionError):
            pass
        finally:
            with contextlib.suppress(OSError, RuntimeError):
                writer.close()

    def _abort_all(self) -> None:
        for w in list(self._writers):
            transport = w.transport
            with contextlib.suppress(OSError, RuntimeError):
                transport.abort()

    def cut(self) -> None:
        """Reset every open connection now (thread-safe)."""
        if self._loop is not None:
            self.cuts += 1
            self._loop.call_soon_threadsafe(self._abort_all)

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def _close() -> None:
            if self._server is not None:
                self._server.close()
            self._abort_all()

        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(_close(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None
