"""CJ/T 188-2004 codec: round trips both ways (hypothesis), a known frame, the 901F reply."""

from __future__ import annotations

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_profiles.errors import CodecError
from device_profiles.protocols import cjt188
from device_profiles.protocols.bcd import address_to_bytes

addresses = st.text("0123456789", min_size=14, max_size=14)
flows = st.integers(0, 10**8 - 1).map(lambda n: n / 100)
clocks = st.datetimes(min_value=datetime(1000, 1, 1)).map(lambda d: d.strftime("%Y-%m-%d %H:%M:%S"))


@given(st.integers(0, 255), addresses, st.sampled_from([0x01, 0x03, 0x81, 0x83, 0xC1]), st.integers(0, 0xFFFF),
       st.integers(0, 255), st.binary(max_size=cjt188.MAX_DATA - 3), st.booleans())
def test_frame_round_trip(meter_type: int, address: str, control: int, di: int, ser: int, data: bytes,
                          wake_up: bool) -> None:
    frame = cjt188.Frame(meter_type, address, control, di, ser, data)
    raw = cjt188.encode_frame(frame, wake_up=wake_up)
    assert cjt188.decode_frame(raw) == frame
    found, consumed = cjt188.split_frame(b"\x00\x13" + raw)
    assert found is not None
    assert consumed == len(raw) + 2
    assert cjt188.decode_frame(found) == frame


@given(addresses, flows, flows, clocks, st.sampled_from(sorted(cjt188.VALVE_STATES)), st.booleans(),
       st.integers(0, 255))
def test_metering_reply_round_trip(address: str, total: float, settled: float, clock: str, valve: int,
                                   battery_low: bool, ser: int) -> None:
    value = cjt188.Metering(total, settled, clock, valve, battery_low)
    frame = cjt188.metering_reply(cjt188.COLD_WATER, address, ser, value)
    back = cjt188.decode_frame(cjt188.encode_frame(frame))
    assert back.ser == ser
    assert back.address == address
    decoded = cjt188.decode_metering(back)
    assert decoded == value
    assert decoded.field("valve") == valve


def test_known_read_request_bytes() -> None:
    raw = cjt188.encode_frame(cjt188.read_request("00000000000001", ser=0))
    assert raw.hex(" ") == "fe fe 68 10 01 00 00 00 00 00 00 01 03 90 1f 00 2c 16"


def test_wrong_checksum_is_refused() -> None:
    raw = bytearray(cjt188.encode_frame(cjt188.read_address_request(), wake_up=False))
    raw[-2] ^= 1
    with pytest.raises(cjt188.ChecksumError):
        cjt188.decode_frame(bytes(raw))


def test_error_reply_and_broadcast() -> None:
    frame = cjt188.decode_frame(cjt188.encode_frame(cjt188.error_reply(0x10, "00000000000001", 7)))
    assert frame.is_abnormal
    assert frame.control == 0xC1
    assert frame.data == b"\x03\x00"
    assert cjt188.decode_frame(cjt188.encode_frame(cjt188.read_address_request())).address == cjt188.BROADCAST


@given(st.integers(0, 255), addresses, st.integers(0, 255), st.binary(min_size=3, max_size=cjt188.MAX_DATA))
def test_bytes_round_trip_the_other_way(meter_type: int, address: str, control: int, data: bytes) -> None:
    body = bytearray([0x68, meter_type, *address_to_bytes(address, 7), control, len(data), *data])
    body += bytes([sum(body) & 0xFF, 0x16])
    assert cjt188.encode_frame(cjt188.decode_frame(bytes(body)), wake_up=False) == bytes(body)


@given(st.binary(max_size=300))
def test_any_bytes_split_and_decode_without_surprises(noise: bytes) -> None:
    found, consumed = cjt188.split_frame(noise)
    assert 0 <= consumed <= len(noise)
    for raw in (found, noise):
        if raw is None:
            continue
        try:
            frame = cjt188.decode_frame(raw)
            cjt188.decode_metering(frame)
        except CodecError:
            pass
