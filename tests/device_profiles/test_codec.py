"""Codec: known vectors from the reference and hypothesis round-trips for every dtype and order."""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles import Point
from device_profiles.codec import ALL_ORDERS, check_write, decode, decode_raw, encode, encode_raw
from device_profiles.errors import CodecError
from device_profiles.model import Order

ORDERS = st.sampled_from(ALL_ORDERS)
INT_RANGES = {
    "int16": (-(1 << 15), (1 << 15) - 1), "uint16": (0, 0xFFFF), "int32": (-(1 << 31), (1 << 31) - 1),
    "uint32": (0, 0xFFFFFFFF), "enum": (0, 0xFFFF), "bitfield": (0, 0xFFFF),
}


@pytest.mark.parametrize(
    ("orders", "expected"),
    [
        (("big", "big"), [0x47F1, 0x2000]),        # ABCD
        (("big", "little"), [0x2000, 0x47F1]),     # CDAB
        (("little", "big"), [0xF147, 0x0020]),     # BADC
        (("little", "little"), [0x0020, 0xF147]),  # DCBA
    ],
)
def test_float32_reference_vectors(orders: tuple[Order, Order], expected: list[int]) -> None:
    assert encode_raw("float32", 123456.0, *orders) == expected
    assert decode_raw("float32", expected, *orders) == 123456.0


def test_meter_vectors() -> None:
    assert encode_raw("float32", 230.0) == [0x4366, 0x0000]
    assert encode_raw("float32", 50.0) == [0x4248, 0x0000]
    assert decode_raw("float32", [0x435B, 0x4121]) == pytest.approx(219.25, abs=0.01)  # the manual rounds it


@settings(deadline=None)
@given(st.sampled_from(sorted(INT_RANGES)), st.data(), ORDERS)
def test_integer_round_trip(dtype: str, data: st.DataObject, orders: tuple[Order, Order]) -> None:
    lo, hi = INT_RANGES[dtype]
    value = data.draw(st.integers(lo, hi))
    regs = encode_raw(dtype, value, *orders)  # type: ignore[arg-type]
    assert all(0 <= r <= 0xFFFF for r in regs)
    assert decode_raw(dtype, regs, *orders) == value  # type: ignore[arg-type]


@settings(deadline=None)
@given(st.floats(width=32, allow_nan=False), ORDERS)
def test_float32_round_trip(value: float, orders: tuple[Order, Order]) -> None:
    assert decode_raw("float32", encode_raw("float32", value, *orders), *orders) == value


@settings(deadline=None)
@given(st.floats(allow_nan=False), ORDERS)
def test_float64_round_trip(value: float, orders: tuple[Order, Order]) -> None:
    regs = encode_raw("float64", value, *orders)
    assert len(regs) == 4
    assert decode_raw("float64", regs, *orders) == value


def test_float_nan_survives() -> None:
    assert math.isnan(float(decode_raw("float32", encode_raw("float32", math.nan))))


@settings(deadline=None)
@given(st.booleans(), ORDERS)
def test_bool_round_trip(value: bool, orders: tuple[Order, Order]) -> None:
    assert decode_raw("bool", encode_raw("bool", value, *orders), *orders) is value


@settings(deadline=None)
@given(st.text(alphabet=st.characters(codec="ascii", exclude_characters="\0"), max_size=16), ORDERS)
def test_string_round_trip(value: str, orders: tuple[Order, Order]) -> None:
    regs = encode_raw("string", value, orders[0], orders[1], length=8)
    assert len(regs) == 8
    assert decode_raw("string", regs, *orders) == value


@settings(deadline=None)
@given(st.sampled_from(["int16", "uint16", "int32", "uint32"]), st.data(), ORDERS,
       st.sampled_from([0.1, 0.01, 0.001, 0.0025, 10.0, 1.0]), st.sampled_from([0.0, -40.0, 273.15]))
def test_scaled_point_round_trip(dtype: str, data: st.DataObject, orders: tuple[Order, Order],
                                 scale: float, offset: float) -> None:
    """decode(encode(x)) == x for every engineering value the registers can represent."""
    lo, hi = INT_RANGES[dtype]
    raw = data.draw(st.integers(lo, hi))
    point = Point(name="x", table="holding_register", dtype=dtype, byte_order=orders[0],
                  word_order=orders[1], scale=scale, offset=offset)
    value = decode(point, encode_raw(dtype, raw, *orders))  # type: ignore[arg-type]
    assert decode(point, encode(point, value)) == value
    assert encode(point, value) == encode_raw(dtype, raw, *orders)  # type: ignore[arg-type]


@settings(deadline=None)
@given(st.floats(width=32, allow_nan=False, allow_infinity=False), ORDERS)
def test_float_point_round_trip(value: float, orders: tuple[Order, Order]) -> None:
    point = Point(name="v", table="input_register", dtype="float32", byte_order=orders[0], word_order=orders[1])
    assert decode(point, encode(point, value)) == value


def test_scaled_decoding_is_clean() -> None:
    point = Point(name="f", table="holding_register", dtype="int16", scale=0.1, unit="Hz")
    assert decode(point, [2301]) == 230.1
    assert encode(point, 230.1) == [2301]
    assert decode(point, encode(point, -12.3)) == -12.3


def test_enum_and_bitfield_decode_to_codes() -> None:
    enum = Point(name="m", table="input_register", dtype="enum", enum={0: "normal", 6: "out_of_service"})
    assert decode(enum, [6]) == 6
    assert enum.enum_name(6) == "out_of_service"
    bits = Point(name="s", table="holding_register", dtype="bitfield", bits={2: "running", 3: "tripped"})
    assert decode(bits, [0b1100]) == 12
    assert bits.flags(12) == {"running": True, "tripped": True}


def test_bit_points() -> None:
    coil = Point(name="reset", table="coil", dtype="bool", writable=True)
    assert coil.register_count == 1
    assert encode(coil, True) == [1]
    assert decode(coil, [0]) is False


@pytest.mark.parametrize(("dtype", "value"), [("int16", 40000), ("uint16", -1), ("uint32", 1 << 32),
                                               ("float32", 1e39), ("int32", math.inf)])
def test_out_of_range_is_a_codec_error(dtype: str, value: float) -> None:
    with pytest.raises(CodecError):
        encode_raw(dtype, value)  # type: ignore[arg-type]


def test_wrong_register_count() -> None:
    with pytest.raises(CodecError, match="needs 2"):
        decode_raw("float32", [1])


def test_check_write() -> None:
    setpoint = Point(name="sp", table="holding_register", dtype="uint16", scale=0.01, writable=True, min=1, max=10)
    assert check_write(setpoint, 4.5) == [450]
    with pytest.raises(CodecError, match="above the maximum"):
        check_write(setpoint, 12)
    command = Point(name="cmd", table="holding_register", dtype="enum", writable=True,
                    enum={0: "normal", 6: "out_of_service"})
    assert check_write(command, "out_of_service") == [6]
    with pytest.raises(CodecError, match="not one of"):
        check_write(command, 3)
    with pytest.raises(CodecError, match="read-only"):
        check_write(Point(name="ro", table="holding_register"), 1)


def test_struct_agrees_for_float64_abcd() -> None:
    regs = encode_raw("float64", 1.5)
    assert struct.unpack(">d", b"".join(r.to_bytes(2, "big") for r in regs))[0] == 1.5
