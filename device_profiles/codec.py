"""Register codec: engineering value ⇄ 16-bit Modbus registers, one codec for both directions.

The edge decodes what it reads with :func:`decode`; the simulators encode their physics with
:func:`encode`, so a simulator can never disagree with the profile the edge uses.

Why our own codec over :mod:`struct` rather than pymodbus' ``convert_from_registers``: pymodbus
applies ``word_order="little"`` by reversing *all* registers of a multi-value read (pymodbus issue
#2675), and has no per-value byte swap. Field devices need both a byte order *and* a word order per
point (the four layouts ABCD, CDAB, BADC, DCBA of the Modbus world), and a block read mixes points
with different layouts, so we slice per point and order per point here.

Layouts, for the float32 123456.0 = 0x47F12000::

    (byte_order, word_order)   name   registers
    ("big", "big")             ABCD   [0x47F1, 0x2000]   Modbus convention, Eastron
    ("big", "little")          CDAB   [0x2000, 0x47F1]   word-swapped, common in PLCs
    ("little", "big")          BADC   [0xF147, 0x0020]   byte-swapped
    ("little", "little")       DCBA   [0x0020, 0xF147]   little-endian

Scaling: ``engineering = raw × scale + offset``. Enum and bitfield points are not scaled and decode
to their integer code (the names are in ``Point.enum`` / ``Point.bits``).
"""

from __future__ import annotations

import math
import struct
from collections.abc import Sequence
from typing import Final

from device_profiles.errors import CodecError
from device_profiles.model import REGISTER_WIDTH, DType, Order, Point

Value = bool | int | float | str
ALL_ORDERS: Final[tuple[tuple[Order, Order], ...]] = (
    ("big", "big"), ("big", "little"), ("little", "big"), ("little", "little"))
"""The four (byte_order, word_order) combinations: ABCD, CDAB, BADC, DCBA."""

ORDER_NAMES: Final[dict[tuple[str, str], str]] = {
    ("big", "big"): "ABCD", ("big", "little"): "CDAB", ("little", "big"): "BADC", ("little", "little"): "DCBA"}

_STRUCT: Final[dict[str, str]] = {
    "int16": ">h", "uint16": ">H", "bitfield": ">H", "enum": ">H", "bool": ">H",
    "int32": ">i", "uint32": ">I", "float32": ">f", "float64": ">d",
}
_INT_RANGE: Final[dict[str, tuple[int, int]]] = {
    "int16": (-(1 << 15), (1 << 15) - 1), "uint16": (0, 0xFFFF), "bitfield": (0, 0xFFFF), "enum": (0, 0xFFFF),
    "bool": (0, 1), "int32": (-(1 << 31), (1 << 31) - 1), "uint32": (0, 0xFFFFFFFF),
}
_UNSCALED: Final = frozenset({"bool", "enum", "bitfield", "string"})
_FLOAT32_MAX: Final = 3.4028234663852886e38


def _to_registers(data: bytes, byte_order: Order, word_order: Order) -> list[int]:
    words = [data[i:i + 2] for i in range(0, len(data), 2)]
    if word_order == "little":
        words.reverse()
    if byte_order == "little":
        return [w[1] << 8 | w[0] for w in words]
    return [w[0] << 8 | w[1] for w in words]


def _to_bytes(registers: Sequence[int], byte_order: Order, word_order: Order) -> bytes:
    regs = list(registers)
    if word_order == "little":
        regs.reverse()
    out = bytearray()
    for reg in regs:
        if not 0 <= reg <= 0xFFFF:
            raise CodecError(f"register value {reg} is not a 16-bit word")
        out += reg.to_bytes(2, "little" if byte_order == "little" else "big")
    return bytes(out)


def encode_raw(dtype: DType, value: Value, byte_order: Order = "big", word_order: Order = "big",
               length: int | None = None) -> list[int]:
    """Unscaled value → registers. Integers must fit the type; strings are padded with NULs."""
    if dtype == "string":
        data = str(value).encode("utf-8")
        size = 2 * (length or max(1, (len(data) + 1) // 2))
        if len(data) > size:
            raise CodecError(f"string of {len(data)} bytes does not fit {size // 2} registers")
        return _to_registers(data.ljust(size, b"\0"), byte_order, "big")
    fmt = _STRUCT[dtype]
    if dtype in ("float32", "float64"):
        number = float(value)
        if dtype == "float32" and math.isfinite(number) and abs(number) > _FLOAT32_MAX:
            raise CodecError(f"{number} is out of the float32 range")
        return _to_registers(struct.pack(fmt, number), byte_order, word_order)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise CodecError(f"{value} cannot be stored in {dtype}")
        value = round(value)
    if isinstance(value, str):
        raise CodecError(f"{value!r} is not a number for {dtype}")
    lo, hi = _INT_RANGE[dtype]
    number = int(value)
    if dtype == "bool":
        number = 1 if number else 0
    if not lo <= number <= hi:
        raise CodecError(f"{number} is out of the {dtype} range {lo}..{hi}")
    return _to_registers(struct.pack(fmt, number), byte_order, word_order)


def decode_raw(dtype: DType, registers: Sequence[int], byte_order: Order = "big",
               word_order: Order = "big") -> Value:
    """Registers → unscaled value (``bool`` for bool, ``str`` for string, else int/float)."""
    if dtype == "string":
        return _to_bytes(registers, byte_order, "big").rstrip(b"\0").decode("utf-8", errors="replace")
    width = REGISTER_WIDTH[dtype]
    if len(registers) != width:
        raise CodecError(f"{dtype} needs {width} register(s), got {len(registers)}")
    raw = struct.unpack(_STRUCT[dtype], _to_bytes(registers, byte_order, word_order))[0]
    if dtype == "bool":
        return bool(raw)
    return raw  # type: ignore[no-any-return]


def decode(point: Point, registers: Sequence[int]) -> Value:
    """A point's registers (or one bit, for coil/discrete-input points) → engineering value."""
    if point.is_bit:
        if len(registers) != 1:
            raise CodecError(f"{point.name}: a bit point decodes exactly one bit, got {len(registers)}")
        return bool(registers[0])
    raw = decode_raw(point.dtype, registers, point.byte_order, point.word_order)
    if point.dtype in _UNSCALED:
        return raw
    assert isinstance(raw, int | float)  # bool/str are handled above
    if point.scale == 1 and point.offset == 0:
        return raw
    value = raw * point.scale + point.offset
    if isinstance(raw, int):
        # round away binary noise: 2301 × 0.1 must read 230.1, not 230.10000000000002
        return round(value, decimal_places(point.scale, point.offset))
    return value


def encode(point: Point, value: Value) -> list[int]:
    """Inverse of :func:`decode`: engineering value → registers (or ``[0|1]`` for a bit point)."""
    if point.is_bit:
        return [1 if value else 0]
    if point.dtype in _UNSCALED or (point.scale == 1 and point.offset == 0):
        raw: Value = value
    else:
        if isinstance(value, str):
            raise CodecError(f"{point.name}: {value!r} is not a number")
        raw = (float(value) - point.offset) / point.scale
    try:
        return encode_raw(point.dtype, raw, point.byte_order, point.word_order, point.length)
    except CodecError as exc:
        raise CodecError(f"{point.name}: {exc}") from exc


def check_write(point: Point, value: Value) -> list[int]:
    """Validate a write request (writable, within min/max) and return the registers to write.

    Used by the edge for commands (a pump setpoint) and by the simulators to refuse what a real
    device would refuse (exception 03, illegal data value).
    """
    if not point.writable:
        raise CodecError(f"{point.name} is read-only")
    if point.enum is not None and isinstance(value, str):
        code = point.enum_code(value)
        if code is None:
            raise CodecError(f"{point.name}: {value!r} is not one of {sorted(point.enum.values())}")
        value = code
    if point.enum is not None and int(value) not in point.enum:
        raise CodecError(f"{point.name}: code {value} is not one of {sorted(point.enum)}")
    if not isinstance(value, str):
        if point.min is not None and value < point.min:
            raise CodecError(f"{point.name}: {value} is below the minimum {point.min}")
        if point.max is not None and value > point.max:
            raise CodecError(f"{point.name}: {value} is above the maximum {point.max}")
    return encode(point, value)


def decimal_places(*numbers: float) -> int:
    """Decimal places needed to represent scaled values exactly (0.01 → 2; capped at 9).

    Public because the edge's block decoder (:mod:`edge.modbus.blockcodec`) rounds the same way:
    one rule for how many places a scaled reading keeps, wherever it is decoded."""
    places = 0
    for number in numbers:
        text = repr(float(number))
        if "e" in text:
            mantissa, exponent = text.split("e")
            frac = mantissa.split(".")[1].rstrip("0") if "." in mantissa else ""
            places = max(places, len(frac) - int(exponent))
        else:
            places = max(places, len(text.split(".")[1].rstrip("0")))
    return min(max(places, 0), 9)
