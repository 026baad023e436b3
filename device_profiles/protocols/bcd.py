"""Packed BCD numbers as both meter standards put them on the wire: least significant byte first.

DL/T 645 and CJ/T 188 both send a value such as ``XXXXXX.XX`` (energy, kWh) as four bytes of two
decimal digits each, lowest byte first; the decimal point is implied by the data format. DL/T 645
marks negative currents, powers and power factors by the top bit of the most significant byte
(sign-magnitude), which the ``signed`` flag selects.
"""

from __future__ import annotations

from device_profiles.errors import CodecError


def to_bcd(value: int, size: int) -> bytes:
    """``value`` (0 ≤ value < 100**size) as ``size`` BCD bytes, least significant first."""
    if value < 0 or value >= 100 ** size:
        raise CodecError(f"{value} does not fit {size} BCD bytes")
    out = bytearray()
    for _ in range(size):
        value, pair = divmod(value, 100)
        out.append((pair // 10) << 4 | pair % 10)
    return bytes(out)


def from_bcd(data: bytes) -> int:
    """BCD bytes (least significant first) → integer; a nibble above 9 is a :class:`CodecError`."""
    value = 0
    for byte in reversed(data):
        high, low = byte >> 4, byte & 0x0F
        if high > 9 or low > 9:
            raise CodecError(f"0x{byte:02X} is not a BCD byte")
        value = value * 100 + high * 10 + low
    return value


def encode_decimal(value: float, size: int, decimals: int, *, signed: bool = False) -> bytes:
    """A number with ``decimals`` implied decimal places in ``size`` bytes (rounded half away)."""
    negative = value < 0
    if negative and not signed:
        raise CodecError(f"{value} is negative but the format is unsigned")
    scaled = int(abs(value) * 10**decimals + 0.5)
    # signed: the sign takes the top bit, so the top digit pair holds at most 79 (0x79 | 0x80 = 0xF9)
    limit = 80 * 100 ** (size - 1) if signed else 100 ** size
    if scaled >= limit:
        raise CodecError(f"{value} does not fit {size} BCD bytes with {decimals} decimals")
    raw = bytearray(to_bcd(scaled, size))
    if negative and scaled:
        raw[-1] |= 0x80
    return bytes(raw)


def decode_decimal(data: bytes, decimals: int, *, signed: bool = False) -> float:
    """Inverse of :func:`encode_decimal`."""
    raw = bytearray(data)
    negative = False
    if signed and raw and raw[-1] & 0x80:
        negative = True
        raw[-1] &= 0x7F
    value: float = from_bcd(bytes(raw)) / 10**decimals
    return -value if negative else value


def address_to_bytes(address: str, size: int) -> bytes:
    """A meter address as printed on its nameplate (``"000000000001"``, most significant digit
    first; ``A``/``a`` digits are the wildcard ``0xAA`` of a broadcast) → wire bytes, lowest first."""
    if len(address) != 2 * size:
        raise CodecError(f"address {address!r} must be {2 * size} digits")
    out = bytearray()
    for index in range(2 * size - 2, -1, -2):
        pair = address[index:index + 2].upper()
        if pair == "AA":
            out.append(0xAA)
        elif pair.isdigit():
            out.append(int(pair[0]) << 4 | int(pair[1]))
        else:
            raise CodecError(f"address {address!r} must be decimal digits (or AA for a wildcard byte)")
    return bytes(out)


def address_from_bytes(data: bytes) -> str:
    """Wire bytes (lowest first) → the nameplate address string (wildcard bytes as ``AA``)."""
    out = []
    for byte in reversed(data):
        if byte == 0xAA:
            out.append("AA")
        elif byte >> 4 <= 9 and byte & 0x0F <= 9:
            out.append(f"{byte:02X}")
        else:
            raise CodecError(f"address byte 0x{byte:02X} is not BCD")
    return "".join(out)
