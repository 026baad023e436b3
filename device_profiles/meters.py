"""Profile points of serial meters ↔ protocol values: the one mapping the edge and the simulators share.

A DL/T 645 point's value is its identifier's BCD number × ``scale`` + ``offset`` (powers travel in
kW and are stored in W: ``scale: 1000``); a CJ/T 188 point is one field of the ``901F`` reply.
The edge decodes with these functions and the simulators encode with them, so the two sides cannot
disagree about a unit or a sign.
"""

from __future__ import annotations

from dataclasses import dataclass

from device_profiles.errors import CodecError
from device_profiles.model import Point
from device_profiles.protocols import cjt188, dlt645


def point_di(point: Point) -> int:
    if point.di is None:
        raise CodecError(f"point {point.name} has no di")
    return dlt645.parse_di(point.di)


def point_format(point: Point) -> dlt645.DataFormat:
    return dlt645.fmt_for(point_di(point), point.bcd, signed=point.signed)


def decode_point(point: Point, raw: bytes) -> float:
    """The value bytes of a DL/T 645 reply → the point's value in its own unit."""
    value = dlt645.decode_value(raw, point_format(point)) * point.scale + point.offset
    return round(value, 9)


def encode_point(point: Point, value: float) -> bytes:
    """The point's value → the value bytes a meter sends (clamped to what the format can carry)."""
    fmt = point_format(point)
    raw = (value - point.offset) / point.scale
    top = (80 * 100 ** (fmt.size - 1) if fmt.signed else 100 ** fmt.size) - 1
    limit = top / 10 ** fmt.decimals
    floor = -limit if fmt.signed else 0.0
    return dlt645.encode_value(min(max(raw, floor), limit), fmt)


def metering_value(point: Point, metering: cjt188.Metering) -> float | int | bool:
    """One CJ/T 188 point's value from a ``901F`` reply (enum points give the code, bool points a bool)."""
    if point.field is None:
        raise CodecError(f"point {point.name} has no field")
    raw = metering.field(point.field)
    if point.dtype == "bool":
        return bool(raw)
    if point.dtype == "enum":
        return int(raw)
    return round(raw * point.scale + point.offset, 9)


@dataclass(frozen=True, slots=True)
class Dlt645Read:
    """One DL/T 645 exchange of a poll: a single item, or a data block (``DI1 = FF``) whose reply
    holds several of the points, each at ``offset`` bytes into the value."""

    di: int
    points: tuple[tuple[Point, int], ...]

    @property
    def is_block(self) -> bool:
        return dlt645.is_block(self.di)

    def decode(self, raw: bytes) -> dict[str, float]:
        """Each point's value from the reply's value bytes (a block may hold more items than asked)."""
        out: dict[str, float] = {}
        for point, offset in self.points:
            size = point_format(point).length
            if len(raw) < offset + size and self.is_block:
                raise CodecError(f"block {dlt645.di_text(self.di)}: {len(raw)} bytes, {point.name} needs "
                                 f"{offset + size}")
            out[point.name] = decode_point(point, raw[offset:offset + size] if self.is_block else raw)
        return out


def plan_reads(points: list[Point], *, blocks: bool = True) -> list[Dlt645Read]:
    """The exchanges that read ``points``: points of one standard family whose items run without a
    gap from the block's first item share one block read (``0201FF00``: voltages A, B, C); the rest,
    vendor identifiers (``bcd:``) and values with trailing bytes are read one by one."""
    singles: list[Dlt645Read] = []
    families: dict[int, list[Point]] = {}
    for point in points:
        di = point_di(point)
        fmt = point_format(point)
        if blocks and point.bcd is None and fmt.trailing == 0 and di in dlt645.DATA_IDS:
            families.setdefault(dlt645.family(di), []).append(point)
        else:
            singles.append(Dlt645Read(di, ((point, 0),)))
    reads: list[Dlt645Read] = []
    for fam, members in families.items():
        members.sort(key=lambda p: dlt645.item_index(point_di(p)))
        start = dlt645.block_start(point_di(members[0]))
        indexes = [dlt645.item_index(point_di(p)) for p in members]
        if len(members) < 2 or indexes != list(range(start, start + len(members))):
            reads += [Dlt645Read(point_di(p), ((p, 0),)) for p in members]
            continue
        size = point_format(members[0]).length
        reads.append(Dlt645Read(fam | dlt645.BLOCK, tuple((p, (i - start) * size) for p, i in zip(members, indexes,
                                                                                                  strict=True))))
    return reads + singles
