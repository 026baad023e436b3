"""Real Modbus servers for the edge tests: pymodbus ``SimDevice`` servers built from a profile, with a
fault switch per unit (exception code, silence), plus a raw TCP server that answers garbage.

Values are encoded with the shared codec from the profile, as the simulators do.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pymodbus import FramerType
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from device_profiles import Profile
from device_profiles.codec import encode
from guanjia.core.ports import free_port

_FC_TABLE = {1: "c", 5: "c", 15: "c", 2: "d", 3: "h", 6: "h", 16: "h", 23: "h", 4: "i"}


@dataclass(slots=True)
class Unit:
    """One simulated device: its registers and its fault mode ("ok", "exception", "silent")."""

    unit: int
    profile: Profile
    values: dict[str, Any]
    mode: str = "ok"
    exception: ExcCodes = ExcCodes.DEVICE_FAILURE
    requests: int = 0
    writes: list[tuple[int, int, list[int] | list[bool]]] = field(default_factory=list)
    blocks: dict[str, tuple[int, list[int]]] = field(default_factory=dict)

    def tables(self) -> dict[str, dict[int, int]]:
        out: dict[str, dict[int, int]] = {"h": {}, "i": {}}
        for point in self.profile.points:
            if point.table in ("holding_register", "input_register"):
                regs = encode(point, self.values.get(point.name, 0))
                key = "h" if point.table == "holding_register" else "i"
                for i, reg in enumerate(regs):
                    out[key][point.address + i] = reg
        return out

    def set(self, name: str, value: Any) -> None:
        """Change a value while the server runs (the registers list is shared with pymodbus)."""
        self.values[name] = value
        point = self.profile.point(name)
        key = "h" if point.table == "holding_register" else "i"
        if key in self.blocks:
            start, registers = self.blocks[key]
            for i, reg in enumerate(encode(point, value)):
                registers[point.address + i - start] = reg

    async def action(self, function_code: int, start_address: int, address: int, count: int,
                     current_registers: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        self.requests += 1
        key = _FC_TABLE.get(function_code, "h")
        self.blocks[key] = (start_address, current_registers)
        if self.mode == "exception":
            return self.exception
        if self.mode == "silent":
            await asyncio.sleep(3600)
        if set_values is not None:
            self.writes.append((function_code, address, list(set_values)))
        return None


def _blocks(regs: Mapping[int, int], datatype: DataType = DataType.REGISTERS) -> list[SimData]:
    if not regs:
        return [SimData(4000, values=[0], datatype=datatype)]
    return [SimData(addr, values=[value], datatype=datatype) for addr, value in sorted(regs.items())]


def sim_device(unit: Unit) -> SimDevice:
    tables = unit.tables()
    coils = [p for p in unit.profile.points if p.table == "coil"]
    coil_regs = {p.address // 16: 0 for p in coils}
    return SimDevice(
        id=unit.unit,
        simdata=(_blocks(coil_regs, DataType.BITS), _blocks({}, DataType.BITS), _blocks(tables["h"]),
                 _blocks(tables["i"])),
        action=unit.action,
    )


class ProfileServer:
    """A pymodbus TCP server on a free port serving ``units`` (several unit ids = a shared link)."""

    def __init__(self, units: list[Unit], framer: FramerType = FramerType.SOCKET, port: int | None = None) -> None:
        self.units = {u.unit: u for u in units}
        self.port = port or free_port()
        self.server = ModbusTcpServer([sim_device(u) for u in units], address=("127.0.0.1", self.port),
                                      framer=framer)

    async def __aenter__(self) -> ProfileServer:
        await self.server.serve_forever(background=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(Exception):
            await self.server.shutdown()  # type: ignore[no-untyped-call]


class GarbageServer:
    """Accepts Modbus TCP requests and answers each with a well-framed MBAP header but nonsense PDU."""

    def __init__(self) -> None:
        self.port = free_port()
        self._server: asyncio.Server | None = None
        self.requests = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readexactly(7)
                tid, _, length, unit = struct.unpack(">HHHB", header)
                await reader.readexactly(length - 1)
                self.requests += 1
                pdu = bytes([0x03, 0x07, 0xDE, 0xAD, 0xBE])  # byte count says 7, 3 bytes follow
                writer.write(struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def __aenter__(self) -> GarbageServer:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 2)
