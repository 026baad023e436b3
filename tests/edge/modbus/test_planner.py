"""Request coalescing as pure tests: the 125-register limit, holes, tables, gaps."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from device_profiles import Hole, Point
from edge.modbus.planner import plan, split


def pt(name: str, address: int, dtype: str = "uint16", table: str = "holding_register") -> Point:
    return Point(name=name, address=address, dtype=dtype, table=table)


def test_contiguous_points_are_one_request() -> None:
    blocks = plan([pt("a", 0, "float32"), pt("b", 2, "float32"), pt("c", 4)])
    assert [(b.start, b.count) for b in blocks] == [(0, 5)]
    assert [off for _, off in blocks[0].points] == [0, 2, 4]


def test_limit_of_125_registers() -> None:
    points = [pt(f"p{i}", i * 2, "float32") for i in range(100)]  # 200 registers
    blocks = plan(points)
    assert all(b.count <= 125 for b in blocks)
    assert sum(len(b.points) for b in blocks) == 100
    assert len(blocks) == 2
    # a 32-bit value is never split across two requests
    for block in blocks:
        for point, offset in block.points:
            assert offset + point.register_count <= block.count


def test_profile_stricter_limit_and_holes() -> None:
    points = [pt(f"p{i}", i * 2, "float32") for i in range(40) if i not in (15, 16)]  # 0..79 minus 30..33
    blocks = plan(points, max_registers=60, holes=[Hole(table="holding_register", start=30, end=33)])
    for block in blocks:
        assert block.count <= 60
        assert not (block.start <= 33 and block.end - 1 >= 30)


def test_tables_never_mixed_and_bits_limit() -> None:
    points = [pt("h", 0), pt("i", 0, table="input_register"), *(pt(f"c{i}", i, "bool", "coil") for i in range(2500))]
    blocks = plan(points)
    tables = [b.table for b in blocks]
    assert tables.count("holding_register") == 1
    assert tables.count("input_register") == 1
    coil_blocks = [b for b in blocks if b.table == "coil"]
    assert [b.count for b in coil_blocks] == [2000, 500]


def test_max_gap_splits() -> None:
    blocks = plan([pt("a", 0), pt("b", 50)], max_gap=10)
    assert len(blocks) == 2
    assert len(plan([pt("a", 0), pt("b", 50)])) == 1


def test_split_one_block_per_point() -> None:
    (block,) = plan([pt("a", 0, "float32"), pt("b", 4)])
    parts = split(block)
    assert [(b.start, b.count) for b in parts] == [(0, 2), (4, 1)]


@given(st.lists(st.tuples(st.integers(0, 2000), st.sampled_from(["uint16", "float32", "float64"])),
                min_size=1, max_size=80, unique_by=lambda t: t[0]),
       st.integers(1, 125))
def test_every_point_planned_once_within_limits(spec: list[tuple[int, str]], limit: int) -> None:
    points = [pt(f"p{i}", addr, dtype) for i, (addr, dtype) in enumerate(spec)]
    limit = max(limit, 4)
    blocks = plan(points, max_registers=limit)
    seen = [p.name for b in blocks for p, _ in b.points]
    assert sorted(seen) == sorted(p.name for p in points)
    for block in blocks:
        assert block.count <= limit
        for point, offset in block.points:
            assert point.address == block.start + offset
            assert offset + point.register_count <= block.count
