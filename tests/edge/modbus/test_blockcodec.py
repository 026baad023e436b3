"""The block decoder equals the shared codec for every dtype, order, scale and offset."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from device_profiles import Point, builtin_profiles
from device_profiles.codec import decode
from edge.modbus.blockcodec import BlockDecoder
from edge.modbus.planner import plan
from guanjia.core.wire import Quality, Scalar

DTYPES = ["int16", "uint16", "int32", "uint32", "float32", "float64", "bool", "bitfield", "enum"]


def _same(a: Scalar, b: Scalar) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b and type(a) is type(b)


@settings(max_examples=300)
@given(dtype=st.sampled_from(DTYPES), byte=st.sampled_from(["big", "little"]),
       word=st.sampled_from(["big", "little"]), scale=st.sampled_from([1.0, 0.1, 0.01, 10.0, 0.5]),
       offset=st.sampled_from([0.0, -40.0, 0.5]), lead=st.integers(0, 3),
       regs=st.lists(st.integers(0, 0xFFFF), min_size=8, max_size=8))
def test_equals_codec(dtype: str, byte: str, word: str, scale: float, offset: float, lead: int,
                      regs: list[int]) -> None:
    extra = {"enum": {0: "a", 1: "b"}} if dtype == "enum" else {}
    point = Point(name="p", table="holding_register", address=lead, dtype=dtype, byte_order=byte,
                  word_order=word, scale=scale, offset=offset, **extra)
    values: dict[str, Scalar] = {}
    quality: dict[str, Quality] = {}
    BlockDecoder(((point, lead),), len(regs)).decode_into(regs, values, quality)
    expected = decode(point, regs[lead:lead + point.register_count])
    if isinstance(expected, float) and not math.isfinite(expected):
        assert quality["p"] is Quality.BAD
    else:
        assert quality["p"] is Quality.GOOD
        assert _same(values["p"], expected), (values["p"], expected)


def test_every_builtin_profile_block_decodes_like_the_codec() -> None:
    for profile in builtin_profiles().values():
        for block in plan([p for p in profile.points if p.table is not None]):
            regs = [(block.start * 7 + i * 13) & 0xFFFF for i in range(block.count)]
            if block.table in ("coil", "discrete_input"):
                regs = [r & 1 for r in regs]
            values: dict[str, Scalar] = {}
            quality: dict[str, Quality] = {}
            BlockDecoder(block.points, block.count).decode_into(regs, values, quality)
            for point, off in block.points:
                expected = decode(point, regs[off:off + point.register_count])
                if isinstance(expected, float) and not math.isfinite(expected):
                    continue
                assert _same(values[point.name], expected), (profile.id, point.name)
