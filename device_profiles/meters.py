"""Profile points of serial meters ↔ protocol values: the one mapping the edge and the simulators share.

A DL/T 645 point's value is its identifier's BCD number × ``scale`` + ``offset`` (powers travel in
kW and are stored in W: ``scale: 1000``); a CJ/T 188 point is one field of the ``901F`` reply.
The edge decodes with these functions and the simulators encode with them, so the two sides cannot
disagree about a unit or a sign.
"""

from __future__ import annotations

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
