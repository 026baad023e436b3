"""Modbus TCP front end: real pymodbus servers that serve device models through their profiles.

Each simulated device becomes a pymodbus :class:`SimDevice` (the non-deprecated datastore API) whose
four tables cover exactly what the profile defines: every register between a table's first and last
point is served, except the profile's ``holes``, which answer exception 02 like the real device.
Register values are not pushed into pymodbus on every physics tick; the device's ``action`` hook —
called by pymodbus on each request — re-encodes the model's values with the profile codec only when
the model changed since the last request (lazy, so serving 500+ devices costs nothing between
polls), and copies them into the block pymodbus answers from.

The same hook enforces what real devices enforce (the profile's max registers per read → exception
03; FC06 on an FC16-only device → exception 01; partial or read-only writes → 02/03; out-of-range
writes → 03) and applies communication faults: ``offline`` (no answer at all — pymodbus'
``ignore_missing_devices`` path), ``modbus_exception`` (a chosen exception code) and
``garbage_frames`` (the reply's PDU is scrambled on its way out, via ``trace_packet``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.exceptions import NoSuchIdException
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from pymodbus.simulator.simcore import SimCore

from device_profiles import Point, Profile
from device_profiles.codec import check_write, decode, encode
from device_profiles.errors import CodecError
from simulators.errors import SimulatorError
from simulators.physics import DeviceModel

log = logging.getLogger(__name__)

TABLES = ("coil", "discrete_input", "holding_register", "input_register")   # SimDevice tuple order
FC_TABLE = {1: "coil", 5: "coil", 15: "coil", 2: "discrete_input", 4: "input_register",
            3: "holding_register", 6: "holding_register", 16: "holding_register", 22: "holding_register",
            23: "holding_register"}
SINGLE_WRITE_FCS = frozenset({5, 6})


@dataclass(slots=True)
class CommFaults:
    """Communication faults of one device, consulted on every request."""

    offline: bool = False
    exception_code: int | None = None
    exception_probability: float = 1.0
    garbage_probability: float = 0.0


@dataclass(slots=True)
class _Table:
    name: str
    points: list[Point]
    lo: int = 0
    hi: int = -1
    image: list[int] = field(default_factory=list)
    synced: int = -1            # model version last copied into pymodbus' block
    encoded: int = -1           # model version last encoded into ``image``

    @property
    def is_bits(self) -> bool:
        return self.name in ("coil", "discrete_input")


class ModbusDevice:
    """One device model behind a unit id: register image, request checks, comm faults."""

    def __init__(self, device_id: str, unit: int, profile: Profile, model: DeviceModel,
                 rng: random.Random | None = None) -> None:
        if profile.modbus is None:
            raise SimulatorError(f"{device_id}: profile {profile.id} is not a Modbus profile")
        self.device_id = device_id
        self.unit = unit
        self.profile = profile
        self.options = profile.modbus
        self.model = model
        self.comm = CommFaults()
        self.rng = rng or random.Random(unit)
        self.requests = 0
        self.tables: dict[str, _Table] = {}
        for name in TABLES:
            points = sorted((p for p in profile.points if p.table == name), key=lambda p: p.address)
            table = _Table(name, points)
            if points:
                table.lo = points[0].address
                table.hi = max(p.address + p.register_count - 1 for p in points)
                if table.is_bits:
                    table.lo -= table.lo % 16
                table.image = [0] * (table.hi - table.lo + 1)
            self.tables[name] = table

    # ------------------------------------------------------------------ pymodbus datastore
    def _runs(self, table: _Table) -> list[tuple[int, int]]:
        """Served address runs of a register table: [lo, hi] minus the profile's holes."""
        runs: list[tuple[int, int]] = []
        start = table.lo
        for hole in sorted((h for h in self.options.holes if h.table == table.name), key=lambda h: h.start):
            if hole.end < start or hole.start > table.hi:
                continue
            if hole.start > start:
                runs.append((start, hole.start - 1))
            start = max(start, hole.end + 1)
        if start <= table.hi:
            runs.append((start, table.hi))
        return runs

    def simdata(self, name: str) -> list[SimData]:
        table = self.tables[name]
        if table.is_bits:
            size = table.hi - table.lo + 1 if table.points else 16
            size += -size % 16
            return [SimData(table.lo, values=[False] * size, datatype=DataType.BITS)]
        if not table.points:
            return [SimData(0, datatype=DataType.INVALID)]
        return [SimData(a, count=b - a + 1, values=0, datatype=DataType.REGISTERS) for a, b in self._runs(table)]

    def sim_device(self) -> SimDevice:
        return SimDevice(id=self.unit, simdata=tuple(self.simdata(n) for n in TABLES),  # type: ignore[arg-type]
                         action=self.action)

    # ------------------------------------------------------------------ encoding
    def _encode(self, table: _Table) -> None:
        version = self.model.version
        if table.encoded == version:
            return
        values = self.model.values()
        if table.is_bits:
            bits = [0] * len(table.image)
            for p in table.points:
                bits[p.address - table.lo] = 1 if values.get(p.name) else 0
            table.image = bits
        else:
            image = table.image
            for p in table.points:
                value = values.get(p.name)
                if value is None:
                    continue
                try:
                    regs = encode(p, value)
                except CodecError as exc:
                    log.debug("%s: %s", self.device_id, exc)
                    continue
                offset = p.address - table.lo
                image[offset:offset + len(regs)] = regs
        table.encoded = version

    def _sync(self, table: _Table, current: list[int]) -> None:
        """Copy the image into pymodbus' block if the model moved since the last request."""
        self._encode(table)
        if table.synced == table.encoded:
            return
        if table.is_bits:
            packed = [0] * (len(table.image) // 16 + 1)
            for i, bit in enumerate(table.image):
                if bit:
                    packed[i // 16] |= 1 << (i % 16)
            n = min(len(current), len(packed))
            current[:n] = packed[:n]
        else:
            n = len(table.image)
            current[:n] = table.image
        table.synced = table.encoded

    def values_now(self) -> dict[str, Any]:
        """Decoded view of what a master would read now (for the control endpoint and tests)."""
        out: dict[str, Any] = {}
        for table in self.tables.values():
            self._encode(table)
            for p in table.points:
                offset = p.address - table.lo
                out[p.name] = decode(p, table.image[offset:offset + p.register_count])
        return out

    # ------------------------------------------------------------------ request hook
    async def action(self, func_code: int, start_address: int, address: int, count: int,
                     current: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        self.requests += 1
        comm = self.comm
        if comm.offline:
            raise NoSuchIdException(f"{self.device_id} is offline")
        if comm.exception_code is not None and self.rng.random() < comm.exception_probability:
            return ExcCodes(comm.exception_code)
        name = FC_TABLE.get(func_code)
        if name is None:
            return ExcCodes.ILLEGAL_FUNCTION
        table = self.tables[name]
        if not table.points:
            return ExcCodes.ILLEGAL_ADDRESS
        limit = self.options.max_bits_per_read if table.is_bits else self.options.max_registers_per_read
        if count > limit:
            return ExcCodes.ILLEGAL_VALUE
        if set_values is not None:
            return self._write(func_code, table, address, list(map(int, set_values)))
        self._sync(table, current)
        return None

    def _write(self, func_code: int, table: _Table, address: int, values: list[int]) -> ExcCodes | None:
        if func_code in SINGLE_WRITE_FCS and self.options.write_function == "multiple":
            return ExcCodes.ILLEGAL_FUNCTION
        end = address + len(values) - 1
        touched = [p for p in table.points if p.address <= end and p.address + p.register_count - 1 >= address]
        if not touched:
            return ExcCodes.ILLEGAL_ADDRESS
        decoded: list[tuple[Point, Any]] = []
        for p in touched:
            if p.address < address or p.address + p.register_count - 1 > end:
                return ExcCodes.ILLEGAL_ADDRESS        # part of a multi-register value
            if not p.writable:
                return ExcCodes.ILLEGAL_VALUE          # read-only parameter
            offset = p.address - address
            try:
                value = decode(p, values[offset:offset + p.register_count])
                check_write(p, value)
            except CodecError as exc:
                log.info("%s: refused write: %s", self.device_id, exc)
                return ExcCodes.ILLEGAL_VALUE
            decoded.append((p, value))
        try:
            for p, value in decoded:
                self.model.write(p.name, value)
        except ValueError as exc:
            log.info("%s: refused write: %s", self.device_id, exc)
            return ExcCodes.ILLEGAL_VALUE
        table.synced = -1   # pymodbus stores the written words; our next read re-syncs from the model
        return None


class _KnownUnitsOnly(SimCore):
    """pymodbus' datastore, but a unit id nobody serves gets no answer at all.

    Stock ``SimCore`` falls back to unit 0 and, without one, fails with a logged traceback and
    exception 04. A transparent RS-485 converter stays silent for a slave that is not on the line;
    raising ``NoSuchIdException`` with ``ignore_missing_devices=True`` is pymodbus' way to say so.
    """

    async def async_getValues(self, device_id: int, func_code: int, address: int,
                              count: int = 1) -> list[int] | list[bool] | ExcCodes:
        if device_id not in self.devices:
            raise NoSuchIdException(f"no device at unit {device_id}")
        return await super().async_getValues(device_id, func_code, address, count)

    async def async_setValues(self, device_id: int, func_code: int, address: int,
                              values: list[int] | list[bool]) -> ExcCodes | None:
        if device_id not in self.devices:
            raise NoSuchIdException(f"no device at unit {device_id}")
        return await super().async_setValues(device_id, func_code, address, values)


class ModbusPort:
    """One TCP listener serving one or many unit ids (a converter, or a single device)."""

    def __init__(self, host: str, port: int, devices: Iterable[ModbusDevice], seed: int = 0) -> None:
        self.host = host
        self.port = port
        self.devices = {d.unit: d for d in devices}
        self.rng = random.Random(seed)
        self._server: ModbusTcpServer | None = None

    def _trace(self, sending: bool, data: bytes) -> bytes:
        if not sending or len(data) < 9:
            return data
        device = self.devices.get(data[6])
        if device is None or device.comm.garbage_probability <= 0:
            return data
        if self.rng.random() >= device.comm.garbage_probability:
            return data
        body = bytearray(self.rng.getrandbits(8) for _ in range(len(data) - 7))
        body[0] = (data[7] ^ 0x55) & 0x7F or 0x41      # a function code the master did not ask for
        return data[:7] + bytes(body)

    async def start(self) -> None:
        # build the datastore once: construct the server with a trivial device, then swap ours in
        placeholder = SimDevice(id=0, simdata=[SimData(0, datatype=DataType.INVALID)])
        self._server = ModbusTcpServer(placeholder, address=(self.host, self.port), ignore_missing_devices=True,
                                       trace_packet=self._trace)
        self._server.context = _KnownUnitsOnly([d.sim_device() for d in self.devices.values()])
        try:
            async with asyncio.timeout(10):
                await self._server.serve_forever(background=True)
        except (RuntimeError, OSError) as exc:
            raise SimulatorError(f"cannot listen on {self.host}:{self.port}: {exc}") from exc

    async def stop(self) -> None:
        if self._server is not None:
            await self._server.shutdown()  # type: ignore[no-untyped-call]
            self._server = None
