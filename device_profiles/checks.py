"""Semantic checks of a structurally valid profile, each tied to the field path that is wrong.

pydantic checks one field at a time; these need the whole profile (two points overlapping, a point
in a poll group that does not exist, a writable point in a read-only table…). Each problem is a
``(path, message)`` pair; the loader turns the path into a line of the YAML file.
"""

from __future__ import annotations

from device_profiles.model import BIT_TABLES, READ_ONLY_TABLES, Point, Profile

Path = tuple[str | int, ...]
Problem = tuple[Path, str]


def _point_problems(index: int, point: Point, profile: Profile) -> list[Problem]:
    where: Path = ("points", index)
    out: list[Problem] = []
    if point.poll_group not in profile.poll_groups:
        out.append(((*where, "poll_group"),
                    f"unknown poll group {point.poll_group!r}; defined: {', '.join(sorted(profile.poll_groups))}"))
    if point.enum is not None and point.dtype != "enum":
        out.append(((*where, "enum"), f"enum labels given but dtype is {point.dtype!r} (use dtype: enum)"))
    if point.dtype == "enum" and not point.enum:
        out.append(((*where, "enum"), "dtype enum needs an enum: {code: label} map"))
    if point.bits is not None and point.dtype != "bitfield":
        out.append(((*where, "bits"), f"bits given but dtype is {point.dtype!r} (use dtype: bitfield)"))
    if point.dtype == "bitfield":
        if not point.bits:
            out.append(((*where, "bits"), "dtype bitfield needs bits: {bit index: flag name}"))
        elif bad := [b for b in point.bits if not 0 <= b <= 15]:
            out.append(((*where, "bits"), f"bit index {bad[0]} is outside 0..15"))
    if point.dtype == "string" and point.length is None:
        out.append(((*where, "length"), "dtype string needs length (registers)"))
    if point.length is not None and point.dtype != "string":
        out.append(((*where, "length"), "length is only for dtype string"))
    if point.min is not None and point.max is not None and point.min > point.max:
        out.append(((*where, "min"), f"min {point.min} is above max {point.max}"))
    if point.dtype in ("enum", "bitfield", "bool", "string") and (point.scale != 1 or point.offset != 0):
        out.append(((*where, "scale"), f"scale/offset do not apply to dtype {point.dtype}"))
    out.extend(_transport_problems(where, point, profile))
    return out


def _transport_problems(where: Path, point: Point, profile: Profile) -> list[Problem]:
    out: list[Problem] = []
    if profile.transport == "mqtt":
        if point.table is not None:
            out.append(((*where, "table"), "an MQTT profile's points have no Modbus table"))
        return out
    if point.table is None:
        out.append(((*where, "table"), "a Modbus point needs table: coil, discrete_input, input_register "
                                       "or holding_register"))
        return out
    if point.table in BIT_TABLES and point.dtype != "bool":
        out.append(((*where, "dtype"), f"a {point.table} holds one bit: dtype must be bool"))
    if point.writable and point.table in READ_ONLY_TABLES:
        out.append(((*where, "writable"), f"{point.table}s are read-only (FC02/FC04): use holding_register or coil"))
    if point.address + point.register_count - 1 > 65535:
        out.append(((*where, "address"),
                    f"address {point.address} + {point.register_count} registers runs past 65535"))
    if profile.modbus is not None:
        limit = profile.modbus.max_bits_per_read if point.is_bit else profile.modbus.max_registers_per_read
        if point.register_count > limit:
            out.append(((*where, "length"), f"needs {point.register_count} registers, more than one read "
                                            f"may fetch ({limit})"))
        if hole := profile.modbus.hole_between(point.table, point.address, point.register_count):
            out.append(((*where, "address"), f"lies in the hole {hole.start}..{hole.end} the device refuses"))
    return out


def _overlaps(profile: Profile) -> list[Problem]:
    out: list[Problem] = []
    spans = sorted(
        (p.table, p.address, p.address + p.register_count - 1, i, p.name)
        for i, p in enumerate(profile.points) if p.table is not None
    )
    reach: dict[str, tuple[int, str]] = {}  # table -> (furthest end so far, its point)
    for table, start, end, index, name in spans:
        if table in reach and start <= reach[table][0]:
            other_end, other = reach[table]
            out.append((("points", index, "address"),
                        f"{name} at {start} overlaps {other} in the {table} table (ends at {other_end})"))
        if table not in reach or end > reach[table][0]:
            reach[table] = (end, name)
    return out


NUMERIC = frozenset({"int16", "uint16", "int32", "uint32", "float32", "float64"})


def _display_problems(index: int, point: Point) -> list[Problem]:
    """What a person needs to read this point: labels, a group, a precision, words for codes and bits.

    Required by ``guanjia profiles check`` (and, through a test, of every shipped profile), not by
    the edge's loader: a site can still poll a device whose profile nobody has labelled yet (the
    page then shows its keys, under "other").
    """
    where: Path = ("points", index)
    out: list[Problem] = []
    if point.label is None:
        out.append(((*where, "label"), f"point {point.name!r} needs label: {{zh: ..., en: ...}}"))
    if point.group is None:
        out.append(((*where, "group"), f"point {point.name!r} needs group: status, faults, counters, electrical, "
                                       "hydraulic, environment, settings or diagnostics"))
    scaled = point.scale != 1 or point.offset != 0 or point.dtype in ("float32", "float64")
    if scaled and point.precision is None:
        out.append(((*where, "precision"), f"point {point.name!r} is fractional: give precision (decimals shown)"))
    if point.precision is not None and point.dtype not in NUMERIC:
        out.append(((*where, "precision"), f"precision applies to numbers, not dtype {point.dtype}"))
    if point.dtype == "enum":
        labels = point.value_labels or {}
        missing = [c for c in (point.enum or {}) if c not in labels]
        if missing:
            name = (point.enum or {})[missing[0]]
            out.append(((*where, "value_labels"), f"enum code {missing[0]} ({name}) needs value_labels: "
                                                  f"{{{missing[0]}: {{zh: ..., en: ...}}}}"))
    if point.value_labels is not None:
        if point.dtype not in ("enum", "bool"):
            out.append(((*where, "value_labels"), f"value_labels apply to dtype enum or bool, not {point.dtype}"))
        elif stray := [c for c in point.value_labels if c not in (point.enum or {0: "", 1: ""})]:
            out.append(((*where, "value_labels"), f"code {stray[0]} is not a value of this point"))
    if point.dtype == "bitfield":
        labels = point.bit_labels or {}
        if missing := [b for b in (point.bits or {}) if b not in labels]:
            out.append(((*where, "bit_labels"), f"bit {missing[0]} ({(point.bits or {})[missing[0]]}) needs "
                                                f"bit_labels: {{{missing[0]}: {{zh: ..., en: ...}}}}"))
    if point.bit_labels is not None:
        if point.dtype != "bitfield":
            out.append(((*where, "bit_labels"), f"bit_labels apply to dtype bitfield, not {point.dtype}"))
        elif stray := [b for b in point.bit_labels if b not in (point.bits or {})]:
            out.append(((*where, "bit_labels"), f"bit {stray[0]} is not named in bits"))
    if point.counter and point.dtype not in NUMERIC:
        out.append(((*where, "counter"), f"a counter is a number, not dtype {point.dtype}"))
    if point.code_format != "none" and point.dtype != "enum":
        out.append(((*where, "code_format"), "code_format applies to dtype enum"))
    return out


def display_problems(profile: Profile) -> list[Problem]:
    """Every point's missing or misplaced display metadata (see :func:`_display_problems`)."""
    return [p for index, point in enumerate(profile.points) for p in _display_problems(index, point)]


def profile_problems(profile: Profile, *, display: bool = False) -> list[Problem]:
    """Every semantic problem of ``profile`` (empty when it is usable); ``display`` adds the
    display-metadata requirements (:func:`display_problems`)."""
    out: list[Problem] = display_problems(profile) if display else []
    if profile.transport == "modbus" and profile.modbus is None:
        out.append((("modbus",), "a Modbus profile needs a modbus: section"))
    if profile.transport == "mqtt" and profile.mqtt is None:
        out.append((("mqtt",), "an MQTT profile needs an mqtt: section (topic and fields)"))
    if profile.transport == "mqtt" and profile.modbus is not None:
        out.append((("modbus",), "an MQTT profile has no modbus: section"))
    if profile.transport == "modbus" and profile.mqtt is not None:
        out.append((("mqtt",), "a Modbus profile has no mqtt: section"))
    seen: dict[str, int] = {}
    for index, point in enumerate(profile.points):
        if point.name in seen:
            out.append((("points", index, "name"),
                        f"duplicate point name {point.name!r} (first at points[{seen[point.name]}])"))
        seen.setdefault(point.name, index)
        out.extend(_point_problems(index, point, profile))
    out.extend(_overlaps(profile))
    if profile.mqtt is not None:
        names = set(seen)
        mapped = set(profile.mqtt.fields.values())
        for json_path, name in profile.mqtt.fields.items():
            if name not in names:
                out.append((("mqtt", "fields", json_path), f"maps to unknown point {name!r}"))
        for index, point in enumerate(profile.points):
            if profile.transport == "mqtt" and point.name not in mapped:
                out.append((("points", index, "name"), f"point {point.name!r} is not mapped from any payload field"))
    return out
