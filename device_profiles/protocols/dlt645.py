"""DL/T 645-2007 frames and data identifiers: the master's requests and the meter's replies.

A frame on the wire (after up to four 0xFE wake-up bytes)::

    68  A0 A1 A2 A3 A4 A5  68  C  L  DATA(L bytes, each +0x33)  CS  16

* ``A0..A5``: the meter address, 12 BCD digits, lowest byte first; ``AA`` bytes are wildcards and
  ``AAAAAAAAAAAA`` is the broadcast address a lone meter answers "read address" (``0x13``) to.
* ``C``: control code. Bit 7 is the direction (1 = reply), bit 6 an abnormal reply, bit 5 "more
  follows"; the low five bits are the function (``0x11`` read data, ``0x13`` read address).
* ``DATA``: every byte is sent +0x33 (mod 256) so a run of zeros never looks like a frame start.
  A read request carries the four-byte data identifier (``DI0`` first); the reply echoes it and
  appends the value; an abnormal reply (``0xD1``) carries one error-status byte.
* ``CS``: the sum of every byte from the first 0x68 through the data, mod 256.

Values are packed BCD, lowest byte first (:mod:`device_profiles.protocols.bcd`); the format of each
standard data identifier (digits, decimals, sign) is in :data:`DATA_IDS`, so a profile names only
the identifier. Identifiers are written as eight hex digits ``DI3 DI2 DI1 DI0`` as the standard's
tables print them (``02010100`` = phase A voltage).
"""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles.errors import CodecError
from device_profiles.protocols import framing
from device_profiles.protocols.bcd import (
    address_from_bytes,
    address_to_bytes,
    decode_decimal,
    encode_decimal,
)
from device_profiles.protocols.framing import Buffer

START = framing.START
END = framing.END
WAKE_UP = b"\xfe\xfe\xfe\xfe"
OFFSET = 0x33
BROADCAST = "AAAAAAAAAAAA"

READ_DATA = 0x11
READ_ADDRESS = 0x13
REPLY = 0x80
ABNORMAL = 0x40
FOLLOWS = 0x20
MAX_DATA = 200  # the standard's limit on L for a read reply


class FrameError(CodecError):
    """Bytes that are not a valid DL/T 645 frame (bad start/end byte, length, checksum)."""


class ChecksumError(FrameError):
    """A complete frame whose checksum does not match its bytes."""


@dataclass(frozen=True, slots=True)
class DataFormat:
    """How a data identifier's value is packed: ``size`` BCD bytes with ``decimals`` implied decimal
    places (``XXX.X`` = 2 bytes, 1 decimal), sign in the top bit when ``signed``; ``trailing`` bytes
    after the value (the time of a maximum demand) are skipped on decode and zero on encode."""

    size: int
    decimals: int
    unit: str | None
    en: str
    zh: str
    signed: bool = False
    trailing: int = 0

    @property
    def length(self) -> int:
        return self.size + self.trailing

    @property
    def pattern(self) -> str:
        digits = 2 * self.size
        whole = "X" * (digits - self.decimals)
        return whole + ("." + "X" * self.decimals if self.decimals else "")


def _energy(en: str, zh: str) -> DataFormat:
    return DataFormat(4, 2, "kWh", en, zh)


DATA_IDS: dict[int, DataFormat] = {
    0x00000000: _energy("combined active energy, total", "组合有功总电能"),
    0x00010000: _energy("forward active energy, total", "正向有功总电能"),
    0x00010100: _energy("forward active energy, tariff 1 (sharp)", "正向有功费率1(尖)电能"),
    0x00010200: _energy("forward active energy, tariff 2 (peak)", "正向有功费率2(峰)电能"),
    0x00010300: _energy("forward active energy, tariff 3 (flat)", "正向有功费率3(平)电能"),
    0x00010400: _energy("forward active energy, tariff 4 (valley)", "正向有功费率4(谷)电能"),
    0x00020000: _energy("reverse active energy, total", "反向有功总电能"),
    0x00030000: DataFormat(4, 2, "kvarh", "combined reactive energy 1, total", "组合无功1总电能"),
    0x02010100: DataFormat(2, 1, "V", "phase A voltage", "A相电压"),
    0x02010200: DataFormat(2, 1, "V", "phase B voltage", "B相电压"),
    0x02010300: DataFormat(2, 1, "V", "phase C voltage", "C相电压"),
    0x02020100: DataFormat(3, 3, "A", "phase A current", "A相电流", signed=True),
    0x02020200: DataFormat(3, 3, "A", "phase B current", "B相电流", signed=True),
    0x02020300: DataFormat(3, 3, "A", "phase C current", "C相电流", signed=True),
    0x02030000: DataFormat(3, 4, "kW", "active power, total", "瞬时总有功功率", signed=True),
    0x02030100: DataFormat(3, 4, "kW", "phase A active power", "瞬时A相有功功率", signed=True),
    0x02030200: DataFormat(3, 4, "kW", "phase B active power", "瞬时B相有功功率", signed=True),
    0x02030300: DataFormat(3, 4, "kW", "phase C active power", "瞬时C相有功功率", signed=True),
    0x02040000: DataFormat(3, 4, "kvar", "reactive power, total", "瞬时总无功功率", signed=True),
    0x02050000: DataFormat(3, 4, "kVA", "apparent power, total", "瞬时总视在功率", signed=True),
    0x02060000: DataFormat(2, 3, None, "power factor, total", "总功率因数", signed=True),
    0x02060100: DataFormat(2, 3, None, "phase A power factor", "A相功率因数", signed=True),
    0x02800002: DataFormat(2, 2, "Hz", "grid frequency", "电网频率"),
    0x02800004: DataFormat(3, 4, "kW", "current active demand", "当前有功需量", signed=True),
    0x01010000: DataFormat(3, 4, "kW", "forward active maximum demand, total (value; its time is skipped)",
                           "正向有功总最大需量", trailing=5),
}
"""The standard identifiers the profiles use (DL/T 645-2007 appendix A), with their formats."""

ERROR_BITS: dict[int, tuple[str, str]] = {
    0: ("other error", "其他错误"),
    1: ("no such data", "无请求数据"),
    2: ("password wrong or not authorised", "密码错/未授权"),
    3: ("baud rate cannot be changed", "通信速率不能更改"),
    4: ("too many annual time zones", "年时区数超"),
    5: ("too many daily time periods", "日时段数超"),
    6: ("too many tariffs", "费率数超"),
}
"""Bits of the error-status byte of an abnormal reply."""


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame, data already un-offset (the +0x33 is the codec's business)."""

    address: str
    control: int
    data: bytes = b""

    @property
    def is_reply(self) -> bool:
        return bool(self.control & REPLY)

    @property
    def is_abnormal(self) -> bool:
        return bool(self.control & ABNORMAL)

    @property
    def function(self) -> int:
        return self.control & 0x1F


def parse_di(text: str) -> int:
    """``"02010100"`` (as the standard prints it) → the identifier; anything else is a CodecError."""
    if len(text) != 8:
        raise CodecError(f"data identifier {text!r} must be 8 hex digits (DI3 DI2 DI1 DI0), e.g. 02010100")
    try:
        return int(text, 16)
    except ValueError:
        raise CodecError(f"data identifier {text!r} must be 8 hex digits (DI3 DI2 DI1 DI0)") from None


def di_text(di: int) -> str:
    return f"{di:08X}"


def _checksum(body: bytes | bytearray) -> int:
    return sum(body) & 0xFF


def encode_frame(frame: Frame, *, wake_up: bool = True) -> bytes:
    """Frame → bytes on the wire (with the four 0xFE wake-up bytes unless ``wake_up`` is false)."""
    if len(frame.data) > MAX_DATA:
        raise FrameError(f"{len(frame.data)} data bytes; at most {MAX_DATA}")
    if not 0 <= frame.control <= 0xFF:
        raise FrameError(f"control code {frame.control} is not a byte")
    body = bytearray([START])
    body += address_to_bytes(frame.address, 6)
    body += bytes([START, frame.control, len(frame.data)])
    body += bytes((b + OFFSET) & 0xFF for b in frame.data)
    body.append(_checksum(body))
    body.append(END)
    return (WAKE_UP if wake_up else b"") + bytes(body)


def split_frame(buffer: bytes | bytearray) -> tuple[bytes | None, int]:
    """Find the first complete frame in a receive buffer.

    Returns ``(frame bytes, consumed)``: ``consumed`` bytes of the buffer are done with (noise,
    wake-up bytes and the frame itself). ``(None, consumed)`` means no complete frame yet — keep the
    rest and read more. A 0x68 that is not followed by a plausible header is skipped as noise, so a
    garbage burst on the bus costs only the bytes it occupies.
    """
    def total_length(buffer: Buffer, index: int) -> int | None:
        if buffer[index + 7] != START or buffer[index + 9] > MAX_DATA:
            return None
        return 12 + buffer[index + 9]

    return framing.split_frame(buffer, 10, total_length)


def decode_frame(raw: bytes) -> Frame:
    """Bytes of one frame (wake-up bytes allowed in front) → :class:`Frame`."""
    start = 0
    while start < len(raw) and raw[start] == 0xFE:
        start += 1
    body = raw[start:]
    if len(body) < 12 or body[0] != START or body[7] != START:
        raise FrameError(f"not a DL/T 645 frame: {body[:12].hex(' ')}")
    length = body[9]
    if len(body) != 12 + length:
        raise FrameError(f"length byte says {length} data bytes, frame has {len(body) - 12}")
    if body[-1] != END:
        raise FrameError(f"frame ends with 0x{body[-1]:02X}, not 0x16")
    if _checksum(body[:-2]) != body[-2]:
        raise ChecksumError(f"checksum 0x{body[-2]:02X}, bytes sum to 0x{_checksum(body[:-2]):02X}")
    address = address_from_bytes(body[1:7])
    data = bytes((b - OFFSET) & 0xFF for b in body[10:10 + length])
    return Frame(address, body[8], data)


# ---------------------------------------------------------------------------- requests and replies
def read_request(address: str, di: int) -> Frame:
    return Frame(address, READ_DATA, di.to_bytes(4, "little"))


def read_address_request() -> Frame:
    return Frame(BROADCAST, READ_ADDRESS)


def read_address_reply(address: str) -> Frame:
    return Frame(address, READ_ADDRESS | REPLY, address_to_bytes(address, 6))


def data_reply(address: str, di: int, value_bytes: bytes) -> Frame:
    return Frame(address, READ_DATA | REPLY, di.to_bytes(4, "little") + value_bytes)


def error_reply(address: str, function: int, error_bits: int) -> Frame:
    return Frame(address, function | REPLY | ABNORMAL, bytes([error_bits & 0xFF]))


def request_di(frame: Frame) -> int:
    """The identifier a read request (or a normal reply) is about."""
    if len(frame.data) < 4:
        raise FrameError(f"a read frame carries a 4-byte identifier, got {len(frame.data)} bytes")
    return int.from_bytes(frame.data[:4], "little")


def reply_value(frame: Frame, di: int) -> bytes:
    """The value bytes of a normal read reply to ``di`` (checks the echoed identifier)."""
    echoed = request_di(frame)
    if echoed != di:
        raise FrameError(f"reply is for {di_text(echoed)}, asked {di_text(di)}")
    return frame.data[4:]


def error_names(error_bits: int, lang: str = "zh") -> list[str]:
    """The error-status byte's set bits, named (Chinese by default)."""
    index = 1 if lang == "zh" else 0
    return [names[index] for bit, names in ERROR_BITS.items() if error_bits >> bit & 1]


# ---------------------------------------------------------------------------- data blocks
BLOCK = 0x0000FF00
"""``DI1 = FF`` asks for a data block: every item of the family (``DI1`` = 00 or 01 upwards) in one
reply, values concatenated in ``DI1`` order — three phase voltages, or total + four tariffs, in one
exchange instead of three or five. Most 2007 meters serve the blocks of the standard's families;
the master falls back to single items when one does not."""


def family(di: int) -> int:
    """The identifier with ``DI1 = 00``: what the items of one block share."""
    return di & ~BLOCK & 0xFFFFFFFF


def is_block(di: int) -> bool:
    return di & BLOCK == BLOCK


def block_start(di: int) -> int:
    """The first ``DI1`` of the block ``di`` belongs to: 00 when the family has a total (energy,
    power, power factor), 01 when it starts at phase A (voltage, current)."""
    return 0 if family(di) in DATA_IDS else 1


def item_index(di: int) -> int:
    """``DI1`` of an item identifier."""
    return di >> 8 & 0xFF


def fmt_for(di: int, pattern: str | None = None, *, signed: bool = False) -> DataFormat:
    """The format of ``di``: the standard's, or one given as a pattern (``XXXX.XX``) for a vendor
    identifier the table does not know."""
    if pattern is None:
        try:
            return DATA_IDS[di]
        except KeyError:
            raise CodecError(f"data identifier {di_text(di)} is not in the table; give its format "
                             "(bcd: XXXXXX.XX)") from None
    return parse_pattern(pattern, signed=signed)


def parse_pattern(pattern: str, *, signed: bool = False) -> DataFormat:
    """``XXX.XXX`` → a :class:`DataFormat` of that many digits (an even count: whole bytes)."""
    whole, _, frac = pattern.partition(".")
    if not whole or set(whole + frac) != {"X"} or (len(whole) + len(frac)) % 2:
        raise CodecError(f"format {pattern!r} must be X digits with an optional '.', an even count "
                         "(XXXXXX.XX, XXX.X, XX.XXXX)")
    return DataFormat((len(whole) + len(frac)) // 2, len(frac), None, pattern, pattern, signed=signed)


def encode_value(value: float, fmt: DataFormat) -> bytes:
    return encode_decimal(value, fmt.size, fmt.decimals, signed=fmt.signed) + bytes(fmt.trailing)


def decode_value(data: bytes, fmt: DataFormat) -> float:
    if len(data) != fmt.length:
        raise CodecError(f"{len(data)} value bytes, the format {fmt.pattern} needs {fmt.length}")
    return decode_decimal(data[:fmt.size], fmt.decimals, signed=fmt.signed)
