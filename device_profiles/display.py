"""How a point's value reads to a person: its label, unit, precision and the words of its codes.

Pure functions of a :class:`~device_profiles.model.Point` and a value, shared by the cloud's device
read model (API and page) and anything else that shows a reading. Every text is produced in both
languages at once (:class:`~device_profiles.model.Text`) so the API carries both and the page picks
one: one model, no second formatting path in JavaScript or a template.

Decisions:

* an enum reads as its word (``门: 关闭``); a fault code also shows its number (``困人 (1)``,
  ``过流 (0x2310)``) because the number is what the manual and the vendor's hotline use;
* a bool reads as the point's state words (``停止``/``运行``) or 是/否 when none are given;
* a bitfield reads as the list of set flags, ``无``/``none`` when no flag is set;
* a code the profile does not know is shown as such (``未知代码 17``) rather than hidden;
* numbers are rounded to the point's ``precision`` (0 when omitted: integers and counters) with
  thousands separators, and units are written the way people write them (``degC`` → ``°C``).
"""

from __future__ import annotations

import math
from typing import Literal

from device_profiles.loader import builtin_profiles
from device_profiles.model import GROUPS, Point, Profile, Text

ValueKind = Literal["number", "state", "flags", "text"]
"""How a value is drawn: a number on a line, a state (enum/bool) as bands, flags as a list, text as is."""

GROUP_LABELS: dict[str, Text] = {
    "status": Text(zh="状态", en="Status"),
    "faults": Text(zh="故障与报警", en="Faults and alarms"),
    "counters": Text(zh="累计", en="Counters"),
    "electrical": Text(zh="电气", en="Electrical"),
    "hydraulic": Text(zh="水力", en="Hydraulic"),
    "environment": Text(zh="环境与温度", en="Environment"),
    "settings": Text(zh="设定", en="Settings"),
    "diagnostics": Text(zh="诊断", en="Diagnostics"),
    "other": Text(zh="其他", en="Other"),
}
GROUP_ORDER: tuple[str, ...] = (*GROUPS, "other")

UNITS: dict[str, str] = {"degC": "°C", "m3/h": "m³/h", "m3": "m³", "deg": "°"}
YES_NO: dict[int, Text] = {0: Text(zh="否", en="no"), 1: Text(zh="是", en="yes")}
NONE_SET = Text(zh="无", en="none")
DASH = Text(zh="—", en="—")
INVALID = Text(zh="无效值", en="invalid")

DEFAULT_PROFILE: dict[str, str] = {"elevator": "elevator-gbt24476", "pump": "vfd-pump", "gate": "access-gate",
                                   "meter": "eastron-sdm630"}
"""The shipped profile a device of a kind is read with when the registry names none (older rows)."""


def profile_for(profile_id: str | None, kind: str) -> Profile | None:
    """The built-in profile named by the registry, else the default one of the device's kind."""
    profiles = builtin_profiles()
    if profile_id and profile_id in profiles:
        return profiles[profile_id]
    default = DEFAULT_PROFILE.get(kind)
    return profiles.get(default) if default else None


def value_kind(point: Point) -> ValueKind:
    if point.dtype in ("enum", "bool"):
        return "state"
    if point.dtype == "bitfield":
        return "flags"
    if point.dtype == "string":
        return "text"
    return "number"


def unit_of(point: Point) -> str | None:
    return UNITS.get(point.unit, point.unit) if point.unit else None


def label_of(point: Point) -> Text:
    return point.label or Text(zh=point.name, en=point.name)


def state_labels(point: Point) -> dict[int, Text]:
    """The words of every code of a state point (enum codes, or a bool's 0 and 1)."""
    if point.dtype == "bool":
        return {**YES_NO, **(point.value_labels or {})}
    words = point.value_labels or {}
    return {code: words.get(code) or Text(zh=name, en=name) for code, name in (point.enum or {}).items()}


def fixed(value: float, precision: int) -> str:
    """A number with ``precision`` decimals and thousands separators (``-0`` prints as ``0``)."""
    text = f"{value:,.{precision}f}"
    return text[1:] if text.startswith("-") and float(text[1:].replace(",", "") or 0) == 0 else text


def number_text(point: Point, value: float | None) -> Text:
    if value is None:
        return DASH
    shown = fixed(value, point.precision or 0)
    unit = unit_of(point)
    shown = f"{shown} {unit}" if unit else shown
    return Text(zh=shown, en=shown)


def _code(point: Point, code: int) -> str:
    return f"0x{code:04X}" if point.code_format == "hex" else str(code)


def set_flags(point: Point, raw: int) -> list[Text]:
    words = point.bit_labels or {}
    return [words.get(bit) or Text(zh=name, en=name) for bit, name in sorted((point.bits or {}).items())
            if raw >> bit & 1]


def format_value(point: Point, value: float | str | None) -> Text:
    """The value as people read it, in both languages (see the module docstring)."""
    if value is None:
        return DASH
    kind = value_kind(point)
    if kind == "text" or isinstance(value, str):
        return Text(zh=str(value), en=str(value))
    if not math.isfinite(value):  # NaN/inf from a broken sensor: say so, never fail the page
        return INVALID
    if kind == "number":
        return number_text(point, float(value))
    code = round(float(value))
    if kind == "flags":
        flags = set_flags(point, code)
        if not flags:
            return NONE_SET
        return Text(zh="、".join(f.zh for f in flags), en=", ".join(f.en for f in flags))
    word = state_labels(point).get(code)
    if word is None:
        return Text(zh=f"未知代码 {_code(point, code)}", en=f"unknown code {_code(point, code)}")
    if point.code_format != "none":
        return Text(zh=f"{word.zh} ({_code(point, code)})", en=f"{word.en} ({_code(point, code)})")
    return word
