"""``guanjia edge probe``: read a register range and decode it every way a manual might mean it.

Commissioning a meter goes wrong in two classic ways: the manual prints 1-based register numbers
(40001 / "register 1" = PDU address 0) and the 32-bit values use one of four byte/word layouts.
The probe reads one register before the given address through the end of the range, then shows
the value at the address decoded as int16/uint16 and as int32/uint32/float32 in ABCD, CDAB, BADC
and DCBA, once taking the address as 0-based (PDU) and once as 1-based (PDU = address − 1), side by
side — the plausible column is the right setting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from device_profiles.codec import ALL_ORDERS, ORDER_NAMES, decode_raw
from edge.config import TcpLinkConfig
from edge.errors import ModbusFault
from edge.modbus.link import ModbusLink
from guanjia.core.wire import Quality


@dataclass(frozen=True, slots=True)
class ProbeResult:
    table: str
    unit: int
    address: int
    start: int  # first PDU address read
    registers: list[int]

    def at(self, pdu: int, count: int) -> list[int] | None:
        index = pdu - self.start
        if index < 0 or index + count > len(self.registers):
            return None
        return self.registers[index:index + count]


def _fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.6g}"
    return str(value)


def interpretations(result: ProbeResult) -> list[tuple[str, str, str]]:
    """Rows of (interpretation, value if the address is 0-based, value if it is 1-based)."""
    rows: list[tuple[str, str, str]] = []
    bases = (result.address, result.address - 1)
    for dtype in ("uint16", "int16"):
        cells = []
        for pdu in bases:
            regs = result.at(pdu, 1)
            cells.append(_fmt(None if regs is None else decode_raw(dtype, regs)))
        rows.append((dtype, cells[0], cells[1]))
    for byte_order, word_order in ALL_ORDERS:
        name = ORDER_NAMES[(byte_order, word_order)]
        for dtype in ("float32", "int32", "uint32"):
            cells = []
            for pdu in bases:
                regs = result.at(pdu, 2)
                cells.append(_fmt(None if regs is None else decode_raw(dtype, regs, byte_order, word_order)))  # type: ignore[arg-type]
            rows.append((f"{dtype} {name}", cells[0], cells[1]))
    return rows


def register_rows(result: ProbeResult) -> list[tuple[str, str, str, str, str]]:
    """Raw dump: (PDU address, 1-based number, hex, uint16, int16) per register read."""
    rows = []
    for index, reg in enumerate(result.registers):
        pdu = result.start + index
        rows.append((str(pdu), str(pdu + 1), f"0x{reg:04X}", str(reg), str(reg - 0x10000 if reg >= 0x8000 else reg)))
    return rows


async def probe(host: str, port: int, *, unit: int, address: int, count: int = 2, table: str = "holding_register",
                timeout_s: float = 2.0) -> ProbeResult:
    """Read ``address-1 .. address+count`` (one register of margin each side, for the 1-based view and
    the low word of a 32-bit value). Devices refuse undefined registers (exception 02), so narrower
    windows are tried before giving up."""
    count = max(count, 2)
    windows = [(address - 1, address + count + 1), (address - 1, address + count), (address, address + count + 1),
               (address, address + count), (address - 1, address + 1)]
    link = ModbusLink(TcpLinkConfig(type="tcp", host=host, port=port, timeout_s=timeout_s, retries=1))
    fault: ModbusFault | None = None
    try:
        for low, high in windows:
            start, end = max(0, low), min(65536, high)
            try:
                registers = await link.read(table, start, end - start, unit)
            except ModbusFault as exc:
                if exc.quality is not Quality.ILLEGAL_ADDRESS:
                    raise
                fault = exc
                continue
            return ProbeResult(table, unit, address, start, registers)
    finally:
        await link.close()
    assert fault is not None
    raise fault
