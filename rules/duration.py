"""Durations as people write them in rule files ("30s", "10m", "1h30m", "2d", "500ms").

Everything inside the evaluator is integer milliseconds, the unit of wire timestamps, so a
duration is parsed once at load time and never again on the hot path.
"""

from __future__ import annotations

import re
from typing import Final

_UNIT_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_PART: Final = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_WHOLE: Final = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$")


def parse_duration(value: object) -> int:
    """Return ``value`` in milliseconds; a bare number means seconds. Raise ``ValueError`` if bad."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or text like 30s, 10m, 1h30m, 2d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return round(value * 1000)
    if not isinstance(value, str):
        raise ValueError("a duration is a number of seconds or text like 30s, 10m, 1h30m, 2d")
    text = value.strip().replace(" ", "")
    if not _WHOLE.match(text):
        raise ValueError(f"{value!r} is not a duration (write e.g. 500ms, 30s, 10m, 1h30m, 2d, 1w)")
    return round(sum(float(n) * _UNIT_MS[u] for n, u in _PART.findall(text)))


def format_duration(ms: int) -> str:
    """The shortest readable form of ``ms`` ("90s" → "1m30s"), used in messages and docs."""
    if ms == 0:
        return "0s"
    parts: list[str] = []
    rest = ms
    for unit in ("d", "h", "m", "s"):
        size = _UNIT_MS[unit]
        if rest >= size:
            count, rest = divmod(rest, size)
            parts.append(f"{count}{unit}")
    if rest:
        parts.append(f"{rest}ms")
    return "".join(parts)
