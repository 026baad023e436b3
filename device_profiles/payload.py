"""JSON payload codec of MQTT devices: the MQTT counterpart of :mod:`device_profiles.codec`.

The gate simulators publish with :func:`encode_payload`; the edge's MQTT listener decodes with
:func:`decode_payload`. Enum points travel as their label ("open") so that the messages stay
readable on the wire, and become the enum code (an int, as from Modbus) once decoded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from device_profiles.codec import Value
from device_profiles.errors import CodecError
from device_profiles.model import Point, Profile


def _get(doc: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(doc, dict) or part not in doc:
            return None
        doc = doc[part]
    return doc


def _set(doc: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        doc = doc.setdefault(part, {})
    doc[leaf] = value


def _coerce(point: Point, raw: Any) -> Value:
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
    for path, name in mapping.fields.items():
        raw = _get(doc, path)
        if raw is not None:
            values[name] = _coerce(profile.point(name), raw)
    return ts, values


def encode_payload(profile: Profile, values: Mapping[str, Value], ts_ms: int | None) -> bytes:
    """{point name: value} → JSON payload laid out as the profile's ``mqtt.fields`` say."""
    mapping = profile.mqtt
    if mapping is None:
        raise CodecError(f"profile {profile.id} has no mqtt mapping")
    doc: dict[str, Any] = {}
    if mapping.timestamp_field is not None and ts_ms is not None:
        _set(doc, mapping.timestamp_field, ts_ms if mapping.timestamp_unit == "ms" else ts_ms / 1000)
    for path, name in mapping.fields.items():
        if name not in values:
            continue
        point = profile.point(name)
        value = values[name]
        if point.dtype == "enum" and not isinstance(value, str):
            value = point.enum_name(int(value)) or int(value)
        elif point.dtype not in ("bool", "enum", "string", "float32", "float64") and not isinstance(value, str):
            raw = (float(value) - point.offset) / point.scale
            value = round(raw)
        elif point.dtype in ("float32", "float64") and not isinstance(value, str):
            value = (float(value) - point.offset) / point.scale
        _set(doc, path, value)
    return orjson.dumps(doc)
