"""One serial meter bus: a connection, one lock, one exchange at a time.

An RS-485 bus is half duplex: a second request while a meter is still answering garbles both, so
the lock is held for one exchange (request out, reply in) and pollers of the meters on the bus
interleave exchange by exchange, as on a Modbus link (:mod:`edge.modbus.link`).

Reaching the bus: ``rtu-over-tcp`` is a transparent converter (bytes in, bytes out over TCP);
``rtu`` is a serial port on the box, opened with pyserial (the kept library) and read
without blocking the loop (``add_reader`` on its file descriptor). Every exchange has a deadline;
the outcome maps to a :class:`~guanjia.core.wire.Quality` at this adapter:

* nothing back before the deadline → ``timeout`` (a silent meter);
* bytes back that never form a frame, a frame with a wrong checksum, or a reply from another
  address → ``decode_error`` (noise, a collision, a mis-addressed meter);
* the connection cannot be made or breaks → ``comm_error``, and the link backs off (capped,
  jittered) before connecting again, so while it is down requests fail fast.

``timeout``/``decode_error``/``comm_error`` are retried ``retries`` times, as on Modbus links;
abnormal replies are answers, so they are not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

import serial

from device_profiles.errors import CodecError
from edge.config import LinkConfig
from edge.errors import MeterFault
from edge.metrics import PollMetrics
from guanjia.core.backoff import Backoff
from guanjia.core.wire import Quality

log = logging.getLogger(__name__)

_RNG = random.Random()
_RETRYABLE = frozenset({Quality.TIMEOUT, Quality.COMM_ERROR, Quality.DECODE_ERROR})
F = TypeVar("F")
Splitter = Callable[[bytes | bytearray], tuple[bytes | None, int]]


class _SerialPort:
    """A pyserial port read through the event loop (non-blocking fd + ``add_reader``)."""

    def __init__(self, port: serial.Serial) -> None:
        self.port = port
        self.fd = port.fileno()
        os.set_blocking(self.fd, False)

    async def read(self) -> bytes:
        loop = asyncio.get_running_loop()
        ready = loop.create_future()

        def wake() -> None:
            if not ready.done():
                ready.set_result(None)

        loop.add_reader(self.fd, wake)
        try:
            await ready
        finally:
            loop.remove_reader(self.fd)
        try:
            return os.read(self.fd, 512)
        except BlockingIOError:
            return b""

    def write(self, data: bytes) -> None:
        """A frame is at most ~220 bytes and the tty's output buffer (4 KiB) takes it at once; the
        short sleep only runs if the driver's buffer is full, which one exchange at a time never fills."""
        view = memoryview(data)
        while view:
            try:
                sent = os.write(self.fd, view)
            except BlockingIOError:
                time.sleep(0.001)
                continue
            view = view[sent:]

    async def drain_input(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self.fd, 4096):
                pass

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.port.close()


class _TcpPort:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read(self) -> bytes:
        data = await self.reader.read(512)
        if not data:
            raise ConnectionResetError("converter closed the connection")
        return data

    def write(self, data: bytes) -> None:
        self.writer.write(data)

    async def drain_input(self) -> None:
        """Discard what arrives within a few ms (a late reply to a timed-out request)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(0.005):
                while await self.reader.read(4096):
                    pass

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class MeterLink:
    """A shared bus. :meth:`exchange` raises :class:`~edge.errors.MeterFault`; it never hangs."""

    def __init__(self, config: LinkConfig, metrics: PollMetrics | None = None,
                 connect_timeout_s: float = 3.0) -> None:
        self.config = config
        self.key = f"{config.protocol}+{config.key}"
        self.lock = asyncio.Lock()
        self.metrics = metrics or PollMetrics()
        self.connect_timeout_s = connect_timeout_s
        self._port: _TcpPort | _SerialPort | None = None
        self._backoff = Backoff(initial=0.5, cap=min(30.0, config.backoff_max_s), rng=_RNG)
        self._retry_at = 0.0
        self.connected = False
        self.connects = 0
        self.exchanges = 0
        self._stale = False  # the last exchange failed: a late answer may still be on its way
        self.gap_s = max(0.05, 30 * 11 / config.baudrate)
        """Silence after some bytes that ends an exchange (30 byte times, at least 50 ms)."""

    async def _open(self) -> _TcpPort | _SerialPort:
        cfg = self.config
        if cfg.type == "rtu":
            try:
                port = serial.Serial(cfg.serial_port, baudrate=cfg.baudrate, parity=cfg.parity,
                                     bytesize=cfg.bytesize, stopbits=cfg.stopbits, timeout=0)
            except (serial.SerialException, ValueError) as exc:
                raise OSError(str(exc)) from exc
            return _SerialPort(port)
        reader, writer = await asyncio.open_connection(cfg.host, cfg.port)
        return _TcpPort(reader, writer)

    async def _ensure_connected(self) -> _TcpPort | _SerialPort:
        if self._port is not None:
            return self._port
        now = time.monotonic()
        if now < self._retry_at:
            raise MeterFault(Quality.COMM_ERROR, f"{self.key} is down, next connect in {self._retry_at - now:.1f}s")
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                port = await self._open()
        except (TimeoutError, OSError) as exc:
            delay = self._backoff.next_delay()
            self._retry_at = time.monotonic() + delay
            if self.connected or self._backoff.attempt == 1:
                log.warning("meter bus %s unreachable (%s); retrying in %.1fs", self.key, exc, delay)
            self.connected = False
            raise MeterFault(Quality.COMM_ERROR, f"cannot connect to {self.key}: {exc}") from exc
        self._port = port
        self._backoff.reset()
        self._retry_at = 0.0
        if not self.connected:
            log.info("meter bus %s connected", self.key)
        self.connected = True
        self.connects += 1
        return port

    def _lost(self, reason: str) -> None:
        if self.connected:
            log.warning("meter bus %s lost: %s", self.key, reason)
        self.connected = False
        if self._port is not None:
            self._port.close()
            self._port = None

    async def close(self) -> None:
        async with self.lock:
            self.connected = False
            if self._port is not None:
                self._port.close()
                self._port = None

    async def exchange(self, request: bytes, split: Splitter, accept: Callable[[bytes], F], *,
                       timeout_s: float | None = None, retries: int | None = None) -> F:
        """Send ``request`` and return ``accept(frame bytes)`` for the first complete frame back.

        ``accept`` decodes and checks the reply (address, identifier); a codec error it raises is a
        ``decode_error``. The lock is held for one attempt at a time, so a retry queues behind the
        neighbours' requests instead of hogging the bus."""
        timeout = timeout_s or self.config.timeout_s
        attempts = 1 + (self.config.retries if retries is None else retries)
        for attempt in range(attempts):
            try:
                return await self._exchange_once(request, split, accept, timeout)
            except MeterFault as exc:
                if exc.quality not in _RETRYABLE or not self.connected or attempt == attempts - 1:
                    raise
        raise MeterFault(Quality.COMM_ERROR, "no attempt made")

    async def _exchange_once(self, request: bytes, split: Splitter, accept: Callable[[bytes], F],
                             timeout: float) -> F:
        metrics = self.metrics
        async with self.lock:
            port = await self._ensure_connected()
            metrics.requests += 1
            self.exchanges += 1
            started = time.perf_counter()
            buffer = bytearray()
            try:
                if self._stale:  # a late answer to the previous request is not ours
                    await port.drain_input()
                    self._stale = False
                port.write(request)
                deadline = time.monotonic() + timeout
                received = b""
                while True:
                    # once bytes arrive, a pause of ``gap_s`` without a complete frame ends the
                    # exchange: noise must not hold the bus for the whole deadline
                    wait = deadline - time.monotonic()
                    if received:
                        wait = min(wait, self.gap_s)
                    if wait <= 0:
                        raise TimeoutError
                    async with asyncio.timeout(wait):
                        chunk = await port.read()
                    received = (received + chunk)[-64:]
                    buffer += chunk
                    raw, consumed = split(buffer)
                    if raw is not None:
                        break
                    del buffer[:consumed]
            except TimeoutError as exc:
                metrics.request_errors += 1
                self._stale = True
                if received:
                    raise MeterFault(Quality.DECODE_ERROR,
                                      f"bytes that do not frame: …{received[-24:].hex(' ')}") from exc
                raise MeterFault(Quality.TIMEOUT, f"no answer in {timeout}s") from exc
            except OSError as exc:
                metrics.request_errors += 1
                self._lost(str(exc))
                raise MeterFault(Quality.COMM_ERROR, f"{self.key}: {exc}") from exc
            finally:
                metrics.request_time.observe((time.perf_counter() - started) * 1000)
            if consumed < len(buffer):
                self._stale = True  # more bytes than one frame: noise or a collision; drop them next time
        try:
            return accept(raw)
        except MeterFault:
            metrics.request_errors += 1
            raise
        except CodecError as exc:  # checksum, another meter's address, bad BCD
            metrics.request_errors += 1
            self._stale = True
            raise MeterFault(Quality.DECODE_ERROR, str(exc)) from exc

    def stats(self) -> dict[str, Any]:
        return {"connected": self.connected, "connects": self.connects, "exchanges": self.exchanges}
