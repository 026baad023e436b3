"""CJ/T 188-2004 frames for water meters: the master's requests and the meter's replies.

A frame on the wire (after two or more 0xFE wake-up bytes)::

    68  T  A0 A1 A2 A3 A4 A5 A6  C  L  DI0 DI1 SER  DATA  CS  16

* ``T``: meter type (0x10 cold water, 0x11 domestic hot water, 0x20 heat, 0x30 gas); ``AA`` in a
  request addresses any type.
* ``A0..A6``: 14 BCD digits, lowest byte first; ``AAAAAAAAAAAAAA`` is the broadcast address of
  "read address" (``C = 0x03``), which a lone meter on the bus answers.
* ``C``: bit 7 reply, bit 6 abnormal reply; ``0x01`` read data, ``0x03`` read address.
* ``DI0 DI1``: the data identifier, sent in that order — ``90 1F`` reads the metering data; ``SER``
  a sequence byte the reply echoes. Unlike DL/T 645 there is no +0x33 offset.
* ``CS``: sum of every byte from 0x68 through the data, mod 256.

The reply to ``901F`` from a water meter (19 bytes after ``DI SER``): current cumulative flow
(4 BCD bytes ``XXXXXX.XX`` + a unit byte, 0x2C = m³), the flow on the settlement day (same
layout), the meter's clock (7 BCD bytes ``ss mm hh DD MM YYYY``) and two status bytes: ``ST0``
bits 0-1 the valve (00 open, 01 closed, 11 abnormal), bit 2 the battery (1 = low).
An abnormal reply (``C = 0xC1``) carries ``DI SER`` and the two status bytes.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles.errors import CodecError
from device_profiles.protocols import framing
from device_profiles.protocols.bcd import address_from_bytes, address_to_bytes, decode_decimal, encode_decimal
from device_profiles.protocols.framing import Buffer

START = framing.START
END = framing.END
WAKE_UP = b"\xfe\xfe"
BROADCAST = "AAAAAAAAAAAAAA"
ANY_TYPE = 0xAA
COLD_WATER = 0x10

READ_DATA = 0x01
READ_ADDRESS = 0x03
REPLY = 0x80
ABNORMAL = 0x40
METERING = 0x901F
READ_ADDRESS_DI = 0x810A
UNIT_M3 = 0x2C
MAX_DATA = 100

VALVE_STATES: dict[int, str] = {0: "open", 1: "closed", 3: "abnormal"}
FIELDS: dict[str, str] = {
    "flow_total": "current cumulative flow (m³) 当前累积流量",
    "flow_settlement": "cumulative flow on the settlement day (m³) 结算日累积流量",
    "valve": "valve state (0 open, 1 closed, 3 abnormal) 阀门状态",
    "battery_low": "battery low (1) 电池欠压",
}
"""The fields of a ``901F`` reply a profile point may name (``field: flow_total``)."""


class FrameError(CodecError):
    """Bytes that are not a valid CJ/T 188 frame."""


class ChecksumError(FrameError):
    """A complete frame whose checksum does not match its bytes."""


@dataclass(frozen=True, slots=True)
class Frame:
    meter_type: int
    address: str
    control: int
    di: int
    ser: int
    data: bytes = b""

    @property
    def is_reply(self) -> bool:
        return bool(self.control & REPLY)

    @property
    def is_abnormal(self) -> bool:
        return bool(self.control & ABNORMAL)


@dataclass(frozen=True, slots=True)
class Metering:
    """A water meter's ``901F`` reply."""

    flow_total: float
    flow_settlement: float
    clock: str  # YYYY-MM-DD hh:mm:ss as the meter says it (its clock is often wrong: kept as text)
    valve: int
    battery_low: bool

    def field(self, name: str) -> float:
        if name == "flow_total":
            return self.flow_total
        if name == "flow_settlement":
            return self.flow_settlement
        if name == "valve":
            return float(self.valve)
        if name == "battery_low":
            return 1.0 if self.battery_low else 0.0
        raise CodecError(f"unknown field {name!r}; known: {', '.join(FIELDS)}")


def encode_frame(frame: Frame, *, wake_up: bool = True) -> bytes:
    payload = bytes([frame.di >> 8 & 0xFF, frame.di & 0xFF, frame.ser & 0xFF]) + frame.data
    if len(payload) > MAX_DATA:
        raise FrameError(f"{len(payload)} data bytes; at most {MAX_DATA}")
    body = bytearray([START, frame.meter_type & 0xFF])
    body += address_to_bytes(frame.address, 7)
    body += bytes([frame.control & 0xFF, len(payload)])
    body += payload
    body.append(sum(body) & 0xFF)
    body.append(END)
    return (WAKE_UP if wake_up else b"") + bytes(body)


def split_frame(buffer: bytes | bytearray) -> tuple[bytes | None, int]:
    """Like :func:`device_profiles.protocols.dlt645.split_frame`: ``(frame bytes or None, consumed)``."""
    def total_length(buffer: Buffer, index: int) -> int | None:
        length = buffer[index + 10]
        return None if length < 3 or length > MAX_DATA else 13 + length

    return framing.split_frame(buffer, 11, total_length)


def decode_frame(raw: bytes) -> Frame:
    start = 0
    while start < len(raw) and raw[start] == 0xFE:
        start += 1
    body = raw[start:]
    if len(body) < 16 or body[0] != START:
        raise FrameError(f"not a CJ/T 188 frame: {body[:16].hex(' ')}")
    length = body[10]
    if len(body) != 13 + length or length < 3:
        raise FrameError(f"length byte says {length} data bytes, frame has {len(body) - 13}")
    if body[-1] != END:
        raise FrameError(f"frame ends with 0x{body[-1]:02X}, not 0x16")
    if sum(body[:-2]) & 0xFF != body[-2]:
        raise ChecksumError(f"checksum 0x{body[-2]:02X}, bytes sum to 0x{sum(body[:-2]) & 0xFF:02X}")
    data = body[11:11 + length]
    return Frame(body[1], address_from_bytes(body[2:9]), body[9], data[0] << 8 | data[1], data[2], bytes(data[3:]))


def read_request(address: str, ser: int, meter_type: int = COLD_WATER) -> Frame:
    return Frame(meter_type, address, READ_DATA, METERING, ser)


def read_address_request(ser: int = 0) -> Frame:
    return Frame(ANY_TYPE, BROADCAST, READ_ADDRESS, READ_ADDRESS_DI, ser)


def read_address_reply(meter_type: int, address: str, ser: int) -> Frame:
    return Frame(meter_type, address, READ_ADDRESS | REPLY, READ_ADDRESS_DI, ser)


def status_bytes(valve: int, battery_low: bool) -> bytes:
    if valve not in VALVE_STATES:
        raise CodecError(f"valve state {valve} is not one of {sorted(VALVE_STATES)}")
    return bytes([valve & 0x03 | (0x04 if battery_low else 0), 0])


def _clock_bytes(clock: str) -> bytes:
    # "YYYY-MM-DD hh:mm:ss" → ss mm hh DD MM YY(low) YY(high), each BCD
    try:
        date, time_ = clock.split(" ")
        year, month, day = (int(x) for x in date.split("-"))
        hour, minute, second = (int(x) for x in time_.split(":"))
    except ValueError:
        raise CodecError(f"meter clock {clock!r} must be YYYY-MM-DD hh:mm:ss") from None
    parts = [second, minute, hour, day, month, year % 100, year // 100]
    if any(not 0 <= p <= 99 for p in parts):
        raise CodecError(f"meter clock {clock!r} is out of range")
    return bytes((p // 10) << 4 | p % 10 for p in parts)


def _clock_text(data: bytes) -> str:
    digits = [(b >> 4) * 10 + (b & 0x0F) for b in data]
    second, minute, hour, day, month, y_low, y_high = digits
    return f"{y_high * 100 + y_low:04d}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{second:02d}"


def metering_reply(meter_type: int, address: str, ser: int, value: Metering) -> Frame:
    data = (encode_decimal(value.flow_total, 4, 2) + bytes([UNIT_M3])
            + encode_decimal(value.flow_settlement, 4, 2) + bytes([UNIT_M3])
            + _clock_bytes(value.clock) + status_bytes(value.valve, value.battery_low))
    return Frame(meter_type, address, READ_DATA | REPLY, METERING, ser, data)


def error_reply(meter_type: int, address: str, ser: int, valve: int = 3, battery_low: bool = False) -> Frame:
    return Frame(meter_type, address, READ_DATA | REPLY | ABNORMAL, METERING, ser, status_bytes(valve, battery_low))


def decode_metering(frame: Frame) -> Metering:
    """The values of a normal ``901F`` reply."""
    if frame.di != METERING:
        raise FrameError(f"reply is for DI {frame.di:04X}, not 901F")
    data = frame.data
    if len(data) != 19:
        raise FrameError(f"a 901F reply has 19 data bytes, got {len(data)}")
    for offset in (4, 9):
        if data[offset] != UNIT_M3:
            raise FrameError(f"flow unit byte 0x{data[offset]:02X}; only m³ (0x2C) is understood")
    status = data[17]
    valve = status & 0x03
    return Metering(
        flow_total=decode_decimal(data[0:4], 2),
        flow_settlement=decode_decimal(data[5:9], 2),
        clock=_clock_text(data[10:17]),
        valve=valve,
        battery_low=bool(status & 0x04),
    )
