"""One Modbus link (a TCP host:port, an RTU-over-TCP converter or a serial port): one connection and
one lock, shared by every unit id behind it.

Why: an RS-485 bus (and most RS-485-to-Ethernet converters) carries one transaction at a time, and
peer gateways that open a connection per device either exhaust the converter's few sockets or
interleave frames. The lock is held for exactly one request, so pollers of different devices on
the link interleave request by request and none waits for another's whole cycle.

Every request has a deadline (``asyncio.timeout``). pymodbus errors are mapped here, at the
adapter, to :class:`~edge.errors.ModbusFault` with the :class:`~guanjia.core.wire.Quality` the affected
points get. Reconnects use a per-link :class:`~guanjia.core.backoff.Backoff`: while the link is down,
requests fail fast with ``comm_error`` instead of each waiting for a connect timeout.

A garbled answer does not take the link down (issue 24). pymodbus 3 decodes a response inside the
transport's ``data_received``; a frame it cannot decode (a function code the master never asked for,
a scrambled PDU behind a well-formed MBAP header) raises there, asyncio treats that as a fatal
protocol error and closes the connection, and the request then waits out its whole timeout. On a
shared RS-485 converter that punished every unit for one unit's garbage: each garbage answer closed
the connection under all of them and cost the bus a full timeout plus a reconnect (the neighbours'
poll rate fell to ×0.43–0.61 in ``make chaos`` noisy_bus; ×0.8–0.92 since). So each client's
framer is wrapped (:func:`_resync_on_garbage`): the broken frame is dropped with whatever else is
buffered (resync: one transaction is in flight at a time and pymodbus clears its buffer before each
request), the request fails at once with :class:`_GarbledFrame`, mapped to ``decode_error`` for
that unit only, and the connection stays up. Should the connection be lost anyway, the next
request reconnects at once (the backoff starts only when a connect fails).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException
from pymodbus.pdu import ExceptionResponse

from edge.config import LinkConfig
from edge.errors import ModbusFault
from edge.metrics import PollMetrics
from guanjia.core.backoff import Backoff
from guanjia.core.wire import Quality

log = logging.getLogger(__name__)

EXCEPTION_QUALITY: dict[int, Quality] = {
    1: Quality.ILLEGAL_FUNCTION,
    2: Quality.ILLEGAL_ADDRESS,
    3: Quality.ILLEGAL_VALUE,
    4: Quality.DEVICE_FAILURE,
    5: Quality.DEVICE_BUSY,  # acknowledge: accepted, still processing
    6: Quality.DEVICE_BUSY,
    10: Quality.COMM_ERROR,  # gateway path unavailable
    11: Quality.TIMEOUT,  # gateway target device failed to respond
}

LinkConfigT = LinkConfig
_RNG = random.Random()
_RETRYABLE = frozenset({Quality.TIMEOUT, Quality.COMM_ERROR, Quality.DECODE_ERROR})


class _GarbledFrame(ModbusIOException):
    """A response frame that arrived whole but could not be decoded (see the module docstring)."""


def _resync_on_garbage(client: AsyncModbusTcpClient | AsyncModbusSerialClient) -> None:
    """Make an undecodable response fail its request instead of closing the connection.

    Wraps ``handleFrame`` of the client's framer (pymodbus 3.16: called from ``callback_data``
    in ``data_received``, where a raise is fatal to the transport). On a decode error the whole
    receive buffer is consumed (returned as used) and the pending response future gets
    :class:`_GarbledFrame`; pymodbus' ``execute`` re-raises it to the caller at once."""
    ctx = client.ctx
    framer = ctx.framer
    handle = framer.handleFrame

    def handle_frame(data: bytes, exp_devid: int, exp_tid: int) -> tuple[int, Any]:
        try:
            return handle(data, exp_devid, exp_tid)
        except ModbusIOException as exc:
            future = ctx.response_future
            if not future.done():
                future.set_exception(_GarbledFrame(f"unit {exp_devid}: undecodable response dropped ({exc})"))
            return len(data), None

    framer.handleFrame = handle_frame  # type: ignore[method-assign]


class ModbusLink:
    """A shared connection. ``read``/``write`` raise :class:`ModbusFault`; they never hang."""

    def __init__(self, config: LinkConfigT, metrics: PollMetrics | None = None,
                 connect_timeout_s: float = 3.0) -> None:
        self.config = config
        self.key = config.key
        self.lock = asyncio.Lock()
        self.metrics = metrics or PollMetrics()
        self.connect_timeout_s = connect_timeout_s
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None
        self._backoff = Backoff(initial=0.5, cap=min(30.0, config.backoff_max_s), rng=_RNG)
        self._retry_at = 0.0
        self.connected = False
        self.connects = 0

    def _new_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        cfg = self.config
        # pymodbus' own retry/reconnect is off: deadlines, retries and backoff are ours
        common: dict[str, Any] = {"timeout": cfg.timeout_s, "retries": 0, "reconnect_delay": 0,
                                  "name": self.key}
        if cfg.type == "tcp":
            return AsyncModbusTcpClient(cfg.host or "", port=cfg.port, **common)
        if cfg.type == "rtu-over-tcp":
            return AsyncModbusTcpClient(cfg.host or "", port=cfg.port, framer=FramerType.RTU, **common)
        return AsyncModbusSerialClient(cfg.serial_port or "", framer=FramerType.RTU, baudrate=cfg.baudrate,
                                       parity=cfg.parity, bytesize=cfg.bytesize, stopbits=cfg.stopbits, **common)

    async def _ensure_connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is not None and self._client.connected:
            return self._client
        now = time.monotonic()
        if now < self._retry_at:
            raise ModbusFault(Quality.COMM_ERROR, f"{self.key} is down, next connect in {self._retry_at - now:.1f}s")
        self._drop_client()
        client = self._new_client()
        try:
            async with asyncio.timeout(self.connect_timeout_s):
                ok = await client.connect()
        except (TimeoutError, OSError, ModbusException) as exc:
            ok = False
            log.debug("connect %s failed: %s", self.key, exc)
        if not ok:
            client.close()
            delay = self._backoff.next_delay()
            self._retry_at = time.monotonic() + delay
            if self.connected or self._backoff.attempt == 1:
                log.warning("modbus link %s unreachable; retrying in %.1fs", self.key, delay)
            self.connected = False
            raise ModbusFault(Quality.COMM_ERROR, f"cannot connect to {self.key}")
        _resync_on_garbage(client)
        self._client = client
        self._backoff.reset()
        self._retry_at = 0.0
        if not self.connected:
            log.info("modbus link %s connected", self.key)
        self.connected = True
        self.connects += 1
        return client

    def _drop_client(self) -> None:
        if self._client is not None:
            with contextlib.suppress(Exception):
                self._client.close()
            self._client = None

    async def close(self) -> None:
        async with self.lock:
            self._drop_client()
            self.connected = False

    async def read(self, table: str, address: int, count: int, unit: int,
                   timeout_s: float | None = None, retries: int | None = None) -> list[int]:
        """Read registers (or bits as 0/1) — the lock is held for this one request (and its retries)."""
        timeout = timeout_s or self.config.timeout_s
        attempts = 1 + (self.config.retries if retries is None else retries)
        for attempt in range(attempts):
            try:
                return await self._read_once(table, address, count, unit, timeout)
            except ModbusFault as exc:
                if exc.quality not in _RETRYABLE or not self.connected or attempt == attempts - 1:
                    raise  # the device answered (retrying will not change its mind), or out of tries
        raise ModbusFault(Quality.COMM_ERROR, "no attempt made")

    async def _read_once(self, table: str, address: int, count: int, unit: int, timeout: float) -> list[int]:
        metrics = self.metrics
        async with self.lock:
            client = await self._ensure_connected()
            metrics.requests += 1
            started = time.perf_counter()
            try:
                async with asyncio.timeout(timeout + 0.25):
                    if table == "holding_register":
                        resp = await client.read_holding_registers(address, count=count, device_id=unit)
                    elif table == "input_register":
                        resp = await client.read_input_registers(address, count=count, device_id=unit)
                    elif table == "coil":
                        resp = await client.read_coils(address, count=count, device_id=unit)
                    elif table == "discrete_input":
                        resp = await client.read_discrete_inputs(address, count=count, device_id=unit)
                    else:
                        raise ModbusFault(Quality.BAD, f"unknown table {table!r}")
            except TimeoutError as exc:
                metrics.request_errors += 1
                raise ModbusFault(Quality.TIMEOUT, f"unit {unit} {table}@{address}: no answer in {timeout}s") from exc
            except ConnectionException as exc:
                metrics.request_errors += 1
                self._lost(str(exc))
                raise ModbusFault(Quality.COMM_ERROR, f"{self.key}: {exc}") from exc
            except _GarbledFrame as exc:  # that unit's answer was garbage; the link is fine
                metrics.request_errors += 1
                raise ModbusFault(Quality.DECODE_ERROR, f"unit {unit} {table}@{address}: {exc}") from exc
            except ModbusIOException as exc:
                metrics.request_errors += 1
                if not (self._client is not None and self._client.connected):
                    self._lost(str(exc))
                    raise ModbusFault(Quality.COMM_ERROR, f"{self.key}: {exc}") from exc
                raise ModbusFault(Quality.TIMEOUT, f"unit {unit} {table}@{address}: {exc}") from exc
            except ModbusException as exc:
                metrics.request_errors += 1
                raise ModbusFault(Quality.DECODE_ERROR, f"unit {unit} {table}@{address}: {exc}") from exc
            finally:
                metrics.request_time.observe((time.perf_counter() - started) * 1000)
        if isinstance(resp, ExceptionResponse) or resp.isError():
            metrics.request_errors += 1
            code = int(getattr(resp, "exception_code", 0) or 0)
            raise ModbusFault(EXCEPTION_QUALITY.get(code, Quality.BAD),
                              f"unit {unit} {table}@{address}: exception {code}")
        if table in ("coil", "discrete_input"):
            bits = list(resp.bits)
            if len(bits) < count:
                metrics.request_errors += 1
                raise ModbusFault(Quality.DECODE_ERROR, f"unit {unit}: {len(bits)} bits for {count} asked")
            return [1 if b else 0 for b in bits[:count]]
        registers = list(resp.registers)
        if len(registers) != count:
            metrics.request_errors += 1
            raise ModbusFault(Quality.DECODE_ERROR, f"unit {unit}: {len(registers)} registers for {count} asked")
        return registers

    def _lost(self, reason: str) -> None:
        if self.connected:
            log.warning("modbus link %s lost: %s", self.key, reason)
        self.connected = False
        self._drop_client()

    async def write(self, table: str, address: int, registers: list[int], unit: int,
                    multiple: bool = False, timeout_s: float | None = None) -> None:
        """Write with FC05 (one coil), FC06 (one register), FC15/FC16 (several, or ``multiple``)."""
        timeout = timeout_s or self.config.timeout_s
        async with self.lock:
            client = await self._ensure_connected()
            self.metrics.requests += 1
            try:
                async with asyncio.timeout(timeout + 0.25):
                    if table == "coil":
                        if len(registers) == 1 and not multiple:
                            resp = await client.write_coil(address, bool(registers[0]), device_id=unit)
                        else:
                            resp = await client.write_coils(address, [bool(r) for r in registers], device_id=unit)
                    elif table == "holding_register":
                        if len(registers) == 1 and not multiple:
                            resp = await client.write_register(address, registers[0], device_id=unit)
                        else:
                            resp = await client.write_registers(address, registers, device_id=unit)
                    else:
                        raise ModbusFault(Quality.ILLEGAL_FUNCTION, f"{table} is read-only")
            except TimeoutError as exc:
                raise ModbusFault(Quality.TIMEOUT, f"unit {unit}: write not answered in {timeout}s") from exc
            except ConnectionException as exc:
                self._lost(str(exc))
                raise ModbusFault(Quality.COMM_ERROR, f"{self.key}: {exc}") from exc
            except ModbusException as exc:
                raise ModbusFault(Quality.COMM_ERROR, f"unit {unit}: {exc}") from exc
        if isinstance(resp, ExceptionResponse) or resp.isError():
            code = int(getattr(resp, "exception_code", 0) or 0)
            raise ModbusFault(EXCEPTION_QUALITY.get(code, Quality.BAD), f"unit {unit}: write exception {code}")
