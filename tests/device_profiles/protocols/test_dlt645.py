"""DL/T 645-2007 codec: round trips both ways (hypothesis), a known frame byte for byte, framing."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from device_profiles.errors import CodecError
from device_profiles.protocols import dlt645
from device_profiles.protocols.bcd import address_to_bytes, decode_decimal, encode_decimal, from_bcd, to_bcd

addresses = st.text("0123456789", min_size=12, max_size=12)
controls = st.sampled_from([0x11, 0x13, 0x91, 0x93, 0xB1, 0xD1, 0xD3])
payloads = st.binary(max_size=dlt645.MAX_DATA)


@given(addresses, controls, payloads, st.booleans())
def test_frame_round_trip(address: str, control: int, data: bytes, wake_up: bool) -> None:
    frame = dlt645.Frame(address, control, data)
    raw = dlt645.encode_frame(frame, wake_up=wake_up)
    assert dlt645.decode_frame(raw) == frame
    found, consumed = dlt645.split_frame(raw)
    assert consumed == len(raw)
    assert found is not None
    assert dlt645.decode_frame(found) == frame


@given(addresses, payloads, st.binary(max_size=40).filter(lambda b: 0x68 not in b), st.binary(max_size=40))
def test_split_skips_noise_before_and_keeps_the_rest(address: str, data: bytes, noise: bytes, tail: bytes) -> None:
    raw = dlt645.encode_frame(dlt645.Frame(address, 0x91, data))
    found, consumed = dlt645.split_frame(noise + raw + tail)
    assert found is not None
    assert dlt645.decode_frame(found).data == data
    assert consumed == len(noise) + len(raw)


@given(addresses, payloads)
def test_a_partial_frame_waits_for_more(address: str, data: bytes) -> None:
    raw = dlt645.encode_frame(dlt645.Frame(address, 0x91, data), wake_up=False)
    for cut in (1, 9, len(raw) - 1):
        found, consumed = dlt645.split_frame(raw[:cut])
        assert found is None
        assert consumed == 0


@given(st.sampled_from(sorted(dlt645.DATA_IDS)), st.data())
def test_every_standard_value_round_trips(di: int, data: st.DataObject) -> None:
    fmt = dlt645.DATA_IDS[di]
    top = 80 * 100 ** (fmt.size - 1) if fmt.signed else 100 ** fmt.size
    raw_int = data.draw(st.integers(-(top - 1) if fmt.signed else 0, top - 1))
    value = raw_int / 10 ** fmt.decimals
    packed = dlt645.encode_value(value, fmt)
    assert len(packed) == fmt.length
    assert dlt645.decode_value(packed, fmt) == pytest.approx(value, abs=10 ** -fmt.decimals / 2)
    frame = dlt645.data_reply("000000000001", di, packed)
    back = dlt645.decode_frame(dlt645.encode_frame(frame))
    assert dlt645.reply_value(back, di) == packed


@given(st.integers(0, 10**12 - 1))
def test_bcd_round_trip(value: int) -> None:
    assert from_bcd(to_bcd(value, 6)) == value


def test_known_read_request_bytes() -> None:
    """Phase A voltage of meter 000000000001, as DL/T 645-2007's example frames print it."""
    raw = dlt645.encode_frame(dlt645.read_request("000000000001", 0x02010100))
    assert raw.hex(" ") == "fe fe fe fe 68 01 00 00 00 00 00 68 11 04 33 34 34 35 b6 16"


def test_known_reply_decodes_to_220_1_volts() -> None:
    value = encode_decimal(220.1, 2, 1)
    assert value == bytes([0x01, 0x22])
    frame = dlt645.decode_frame(dlt645.encode_frame(dlt645.data_reply("000000000001", 0x02010100, value)))
    assert dlt645.decode_value(dlt645.reply_value(frame, 0x02010100), dlt645.DATA_IDS[0x02010100]) == 220.1


def test_negative_power_uses_the_sign_bit() -> None:
    assert encode_decimal(-1.5, 3, 4, signed=True) == bytes([0x00, 0x50, 0x81])
    assert decode_decimal(bytes([0x00, 0x50, 0x81]), 4, signed=True) == -1.5


def test_wrong_checksum_and_end_byte_are_refused() -> None:
    raw = bytearray(dlt645.encode_frame(dlt645.read_request("000000000001", 0x00010000), wake_up=False))
    raw[-2] ^= 0xFF
    with pytest.raises(dlt645.ChecksumError):
        dlt645.decode_frame(bytes(raw))
    raw[-2] ^= 0xFF
    raw[-1] = 0x17
    with pytest.raises(dlt645.FrameError):
        dlt645.decode_frame(bytes(raw))


def test_error_reply_names_its_bits() -> None:
    frame = dlt645.decode_frame(dlt645.encode_frame(dlt645.error_reply("000000000001", dlt645.READ_DATA, 0x02)))
    assert frame.control == 0xD1
    assert frame.is_abnormal
    assert frame.data == b"\x02"
    assert dlt645.error_names(frame.data[0]) == ["无请求数据"]
    assert dlt645.error_names(frame.data[0], "en") == ["no such data"]


def test_broadcast_address_round_trips() -> None:
    raw = dlt645.encode_frame(dlt645.read_address_request())
    assert raw[5:11] == b"\xaa" * 6
    assert dlt645.decode_frame(raw).address == dlt645.BROADCAST


def test_bad_inputs_are_codec_errors() -> None:
    with pytest.raises(CodecError):
        dlt645.parse_di("0201010")
    with pytest.raises(CodecError):
        dlt645.parse_pattern("XX.X")
    with pytest.raises(CodecError):
        dlt645.encode_value(1e9, dlt645.DATA_IDS[0x02010100])
    with pytest.raises(CodecError):
        from_bcd(b"\x1a")
    assert dlt645.parse_pattern("XXXXXX.XX").size == 4


@given(addresses, controls, payloads)
def test_bytes_round_trip_the_other_way(address: str, control: int, data: bytes) -> None:
    """Bytes a meter (or master) put on the wire → frame → the same bytes: nothing is normalised away."""
    body = bytearray([0x68, *address_to_bytes(address, 6), 0x68, control, len(data)])
    body += bytes((b + 0x33) & 0xFF for b in data)
    body += bytes([sum(body) & 0xFF, 0x16])
    assert dlt645.encode_frame(dlt645.decode_frame(bytes(body)), wake_up=False) == bytes(body)


@given(st.binary(max_size=300))
def test_any_bytes_split_and_decode_without_surprises(noise: bytes) -> None:
    """Whatever arrives on the bus: splitting never raises and consumes at most what it was given;
    decoding either gives a frame or raises the codec's own error."""
    found, consumed = dlt645.split_frame(noise)
    assert 0 <= consumed <= len(noise)
    for raw in (found, noise):
        if raw is None:
            continue
        with contextlib.suppress(CodecError):
            dlt645.decode_frame(raw)
