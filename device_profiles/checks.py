"""Semantic checks of a structurally valid profile, each tied to the field path that is wrong.

pydantic checks one field at a time; these need the whole profile (two points overlapping, a point
in a poll group that does not exist, a writable point in a read-only table…). Each problem is a
``(path, message)`` pair; the loader turns the path into a line of the YAML file.
"""

from __future__ import annotations

from device_profiles.errors import CodecError
from device_profiles.model import BIT_TABLES, READ_ONLY_TABLES, SERIAL_METER_TRANSPORTS, Point, Profile
from device_profiles.protocols import cjt188, dlt645

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


def _meter_problems(where: Path, point: Point, profile: Profile) -> list[Problem]:
    """A DL/T 645 point names a data identifier (and its format when the table lacks it); a
    CJ/T 188 point names a field of the metering reply. Neither has a Modbus table."""
    out: list[Problem] = []
    if point.table is not None:
        out.append(((*where, "table"), f"a {profile.transport} meter's points have no Modbus table"))
    if profile.transport == "cjt188":
        if point.field not in cjt188.FIELDS:
            out.append(((*where, "field"), f"a CJ/T 188 point needs field: one of {', '.join(cjt188.FIELDS)}"))
        if point.di is not None:
            out.append(((*where, "di"), "a CJ/T 188 point has no di (every field comes from the 901F reply)"))
        return out
    if point.field is not None:
        out.append(((*where, "field"), "field is for CJ/T 188 points; a DL/T 645 point names its di"))
    if point.di is None:
        out.append(((*where, "di"), "a DL/T 645 point needs di: its data identifier, 8 hex digits (02010100)"))
        return out
    try:
        dlt645.fmt_for(dlt645.parse_di(point.di), point.bcd, signed=point.signed)
    except CodecError as exc:
        out.append(((*where, "bcd" if point.bcd else "di"), str(exc)))
    return out


def _transport_problems(where: Path, point: Point, profile: Profile) -> list[Problem]:
    out: list[Problem] = []
    if profile.transport in SERIAL_METER_TRANSPORTS:
        return _meter_problems(where, point, profile)
    if point.di is not None or point.field is not None or point.bcd is not None:
        out.append(((*where, "di" if point.di is not None else "field" if point.field else "bcd"),
                    "di/bcd/field are for DL/T 645 and CJ/T 188 meters"))
    if profile.transport != "modbus":
        if point.table is not None:
            out.append(((*where, "table"), f"an {profile.transport} profile's points have no Modbus table"))
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
    if profile.transport in SERIAL_METER_TRANSPORTS:
        for section in ("modbus", "mqtt"):
            if getattr(profile, section) is not None:
                out.append(((section,), f"a {profile.transport} meter profile has no {section}: section"))
    if profile.transport == "isapi" and profile.isapi is None:
        out.append((("isapi",), "an ISAPI profile needs an isapi: section (events)"))
    if profile.transport != "isapi" and profile.isapi is not None:
        out.append((("isapi",), f"a {profile.transport} profile has no isapi: section"))
    seen: dict[str, int] = {}
    for index, point in enumerate(profile.points):
        if point.name in seen:
            out.append((("points", index, "name"),
                        f"duplicate point name {point.name!r} (first at points[{seen[point.name]}])"))
        seen.setdefault(point.name, index)
        out.extend(_point_problems(index, point, profile))
    out.extend(_overlaps(profile))
    if profile.mqtt is not None:
        out.extend(_mqtt_problems(profile))
    if profile.isapi is not None:
        out.extend(_isapi_problems(profile))
    out.extend(_command_problems(profile, set(seen)))
    return out


def _command_problems(profile: Profile, points: set[str]) -> list[Problem]:
    """Commands need a transport that carries them (an MQTT command topic, an ISAPI controller);
    a Modbus device's commands are writes of its writable points, not actions."""
    out: list[Problem] = []
    names: dict[str, int] = {}
    for index, command in enumerate(profile.commands):
        where: Path = ("commands", index)
        if command.name in names:
            out.append(((*where, "name"),
                        f"duplicate command {command.name!r} (first at commands[{names[command.name]}])"))
        names.setdefault(command.name, index)
        if command.name in points:
            out.append(((*where, "name"), f"{command.name!r} is a point; a command needs a name of its own"))
        if profile.transport == "mqtt" and (profile.mqtt is None or profile.mqtt.command_topic is None):
            out.append(((*where,), "an MQTT device takes commands on mqtt.command_topic: add it "
                                   "(e.g. devices/{community}/{device}/cmd)"))
        elif profile.transport not in ("mqtt", "isapi"):
            out.append(((*where,), f"a {profile.transport} device has no actions: commands to it are writes of "
                                   "its writable points"))
    mqtt = profile.mqtt
    if mqtt is not None and mqtt.command_topic is not None and (
            "{device}" not in mqtt.command_topic or "#" in mqtt.command_topic or "+" in mqtt.command_topic):
        out.append((("mqtt", "command_topic"), "command_topic must contain {device} and no wildcards"))
    return out


def _labels(point: Point) -> set[str]:
    return set((point.enum or {}).values()) | set((point.bits or {}).values())


def _mqtt_problems(profile: Profile) -> list[Problem]:
    assert profile.mqtt is not None
    out: list[Problem] = []
    names = set(profile.point_names)
    mapped = profile.mqtt.mapped_points
    for json_path in profile.mqtt.fields:
        for name in profile.mqtt.targets(json_path):
            if name not in names:
                out.append((("mqtt", "fields", json_path), f"maps to unknown point {name!r}"))
    for json_path, table in profile.mqtt.codes.items():
        if json_path not in profile.mqtt.fields:
            out.append((("mqtt", "codes", json_path), f"{json_path!r} is not one of mqtt.fields"))
            continue
        targets = [profile.point(n) for n in profile.mqtt.targets(json_path) if n in names]
        for code, label in table.items():
            known = set.union(*(_labels(p) for p in targets)) if targets else set()
            if targets and label not in known:
                out.append((("mqtt", "codes", json_path, str(code)),
                            f"label {label!r} is not a label of {', '.join(p.name for p in targets)} "
                            f"(known: {', '.join(sorted(known)) or 'none: give the points enum/bits'})"))
    for index, point in enumerate(profile.points):
        if profile.transport == "mqtt" and point.name not in mapped:
            out.append((("points", index, "name"), f"point {point.name!r} is not mapped from any payload field"))
    return out


def _isapi_problems(profile: Profile) -> list[Problem]:
    assert profile.isapi is not None
    isapi = profile.isapi
    out: list[Problem] = []
    names = set(profile.point_names)
    for field, name in (("event_point", isapi.event_point), ("heartbeat_point", isapi.heartbeat_point)):
        if name is not None and name not in names:
            out.append((("isapi", field), f"unknown point {name!r}"))
    event_labels = _labels(profile.point(isapi.event_point)) if isapi.event_point in names else set()
    for name in isapi.rest:
        if name not in names:
            out.append((("isapi", "rest", name), f"unknown point {name!r}"))
    if isapi.status is not None:
        for path, name in isapi.status.fields.items():
            if name not in names:
                out.append((("isapi", "status", "fields", path), f"maps to unknown point {name!r}"))
        for path in isapi.status.codes:
            if path not in isapi.status.fields:
                out.append((("isapi", "status", "codes", path), f"{path!r} is not one of isapi.status.fields"))
        for field, points in (("door_point", [isapi.status.door_point]), ("latched", isapi.status.latched)):
            out.extend((("isapi", "status", field), f"unknown point {name!r}") for name in points if name not in names)
    for key, event in isapi.events.items():
        where: Path = ("isapi", "events", key)
        if event_labels and event.event not in event_labels:
            out.append(((*where, "event"), f"{event.event!r} is not a label of {isapi.event_point}"))
        for name, value in event.set.items():
            if name not in names:
                out.append(((*where, "set", name), f"unknown point {name!r}"))
            elif isinstance(value, str) and value not in _labels(profile.point(name)):
                out.append(((*where, "set", name), f"{value!r} is not a label of {name}"))
        for name in event.pulse:
            if name not in event.set:
                out.append(((*where, "pulse"), f"{name!r} is not one of the points this event sets"))
        counters = [event.count] if isinstance(event.count, str) else list((event.count or {}).values())
        for name in counters:
            if name not in names:
                out.append(((*where, "count"), f"unknown counter point {name!r}"))
    return out
