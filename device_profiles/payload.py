"""JSON payload codec of MQTT devices: the MQTT counterpart of :mod:`device_profiles.codec`.

The gate simulators publish with :func:`encode_payload`; the edge's MQTT listener decodes with
:func:`decode_payload`. Enum points travel as their label ("open") so that the messages stay
readable on the wire, and become the enum code (an int, as from Modbus) once decoded.

Vendor devices (lift IoT boxes) send their own codes; the profile's ``mqtt.codes`` table turns them
into our labels first (see :class:`device_profiles.model.MqttMapping`). A *list* of labels (a box's
active faults) decodes into a bitfield as the OR of the named bits, and into an enum as the lowest
code named, 0 (``none``) for an empty list: the lift vocabulary numbers its faults by urgency
(1 = passengers_trapped), so the enum carries the most urgent of several active faults.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from device_profiles.codec import Value
from device_profiles.errors import CodecError
from device_profiles.model import Point, Profile


def json_path(doc: Any, dotted: str) -> Any:
    """The value at a dotted path (``run.floor``; a number indexes a list: ``doorStatus.0``), or None."""
    for part in dotted.split("."):
        if isinstance(doc, list) and part.isdigit() and int(part) < len(doc):
            doc = doc[int(part)]
        elif isinstance(doc, dict) and part in doc:
            doc = doc[part]
        else:
            return None
    return doc


_get = json_path


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[leaf] = value


def _translate(path: str, raw: Any, table: Mapping[str | int, str]) -> Any:
    """Vendor code(s) → our label(s), by the profile's ``codes`` table (compared as text)."""
    if isinstance(raw, list):
        return [_translate(path, item, table) for item in raw]
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise CodecError(f"{path}: expected a code or a list of codes, got {raw!r}")
    text = str(raw)
    for code, label in table.items():
        if str(code) == text:
            return label
    if "*" in table:
        return table["*"]
    raise CodecError(f"{path}: unknown code {raw!r} (the profile's mqtt.codes.{path} knows "
                     f"{', '.join(str(c) for c in table)})")


def _coerce_list(point: Point, raw: list[Any]) -> Value:
    """A list of labels; labels this point does not know are another target's (an ``overload`` flag
    has a bit but no fault code): skipped. The loader checks that each label has some target."""
    labels = [str(item) for item in raw]
    if point.dtype == "bitfield":
        bits = {label: bit for bit, label in (point.bits or {}).items()}
        word = 0
        for label in labels:
            if label in bits:
                word |= 1 << bits[label]
        return word
    if point.dtype == "enum":
        codes = [code for label in labels if (code := point.enum_code(label)) is not None]
        nonzero = [c for c in codes if c != 0]
        return min(nonzero) if nonzero else 0
    raise CodecError(f"{point.name}: a list fits only an enum or a bitfield point, got {raw!r}")


def _coerce(point: Point, raw: Any) -> Value:
    if isinstance(raw, list):
        return _coerce_list(point, raw)
    if point.dtype == "enum":
        if isinstance(raw, str):
            code = point.enum_code(raw)
            if code is None:
                raise CodecError(f"{point.name}: unknown label {raw!r}")
            return code
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        raise CodecError(f"{point.name}: expected an enum label, got {raw!r}")
    if point.dtype == "bool":
        if isinstance(raw, bool):
            return raw
        if raw in (0, 1):
            return bool(raw)
        raise CodecError(f"{point.name}: expected true/false, got {raw!r}")
    if point.dtype == "string":
        return str(raw)
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise CodecError(f"{point.name}: expected a number, got {raw!r}")
    if point.dtype in ("float32", "float64"):
        return float(raw) * point.scale + point.offset
    if point.scale == 1 and point.offset == 0:
        return int(raw)
    return raw * point.scale + point.offset


def decode_payload(profile: Profile, payload: bytes | str) -> tuple[int | None, dict[str, Value]]:
    """Payload → (device timestamp in epoch ms or None, {point name: value}) for mapped fields present.

    Fields absent from a message are simply not reported (a partial update); a field of the wrong
    type raises :class:`CodecError`.
    """
    mapping = profile.mqtt
    if mapping is None:
        raise CodecError(f"profile {profile.id} has no mqtt mapping")
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise CodecError(f"payload is not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise CodecError("payload is not a JSON object")
    ts: int | None = None
    if mapping.timestamp_field is not None:
        raw_ts = _get(doc, mapping.timestamp_field)
        if raw_ts is not None:
            if isinstance(raw_ts, bool) or not isinstance(raw_ts, int | float):
                raise CodecError(f"{mapping.timestamp_field}: expected a number, got {raw_ts!r}")
            ts = int(raw_ts * 1000) if mapping.timestamp_unit == "s" else int(raw_ts)
    values: dict[str, Value] = {}
    for path in mapping.fields:
        raw = _get(doc, path)
        if raw is None:
            continue
        if path in mapping.codes:
            raw = _translate(path, raw, mapping.codes[path])
        for name in mapping.targets(path):
            values[name] = _coerce(profile.point(name), raw)
    return ts, values


def _vendor(table: Mapping[str | int, str], label: str) -> str | int:
    """Our label → the vendor's first code for it (the simulators speak the vendor's language)."""
    for code, known in table.items():
        if known == label and code != "*":
            return code
    raise CodecError(f"no vendor code for {label!r}")


def encode_payload(profile: Profile, values: Mapping[str, Value], ts_ms: int | None) -> bytes:
    """{point name: value} → JSON payload laid out as the profile's ``mqtt.fields`` say."""
    mapping = profile.mqtt
    if mapping is None:
        raise CodecError(f"profile {profile.id} has no mqtt mapping")
    doc: dict[str, Any] = {}
    if mapping.timestamp_field is not None and ts_ms is not None:
        _set(doc, mapping.timestamp_field, ts_ms if mapping.timestamp_unit == "ms" else ts_ms // 1000)
    for path in mapping.fields:
        names = [n for n in mapping.targets(path) if n in values]
        if not names:
            continue
        # a field feeding a bitfield and an enum (a fault list) is written from the bitfield
        name = next((n for n in names if profile.point(n).dtype == "bitfield"), names[0])
        point = profile.point(name)
        value = values[name]
        table = mapping.codes.get(path)
        if table is not None:
            label = point.enum_name(int(value)) if point.dtype == "enum" else None
            if point.dtype == "bitfield":
                flags = [flag for flag, on in point.flags(int(value)).items() if on]
                _set(doc, path, [_vendor(table, flag) for flag in flags])
            elif label is not None:
                _set(doc, path, _vendor(table, label))
            else:
                _set(doc, path, value)
            continue
        if point.dtype == "enum" and not isinstance(value, str):
            value = point.enum_name(int(value)) or int(value)
        elif point.dtype not in ("bool", "enum", "string", "float32", "float64") and not isinstance(value, str):
            raw = (float(value) - point.offset) / point.scale
            value = round(raw)
        elif point.dtype in ("float32", "float64") and not isinstance(value, str):
            value = (float(value) - point.offset) / point.scale
        _set(doc, path, value)
    return orjson.dumps(doc)
