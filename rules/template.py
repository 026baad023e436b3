"""Message templates: ``"{device}: outlet pressure {value:.2f} bar below {threshold}"``.

The syntax is Python's format mini-language restricted to plain names (no ``{x.attr}``, no
``{x[0]}``), checked when the rule is loaded, so a template can never reach into objects. Rendering
never fails: an unknown name shows as ``?``, an unknown value as ``n/a``, and a value that does not
fit the format spec (text with ``:.2f``) is shown as it is. An alarm must go out even when its
message is imperfect.
"""

from __future__ import annotations

import re
import string
from collections.abc import Mapping
from typing import Final

_NAME: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_formatter: Final = string.Formatter()


def _parse(text: str) -> list[tuple[str, str | None, str | None, str]]:
    try:
        return [(lit, name, conv, spec or "") for lit, name, spec, conv in _formatter.parse(text)]
    except ValueError as exc:
        raise ValueError(f"template syntax: {exc} (write {{{{ and }}}} for literal braces)") from exc


def check_template(text: str) -> list[str]:
    """Validate ``text``; return the field names it uses. Raise ``ValueError`` naming the problem."""
    names: list[str] = []
    for _lit, name, conv, spec in _parse(text):
        if name is None:
            continue
        if not _NAME.match(name):
            raise ValueError(f"template field {{{name}}} must be a plain name like {{value}} or {{device}}")
        if conv not in (None, "s", "r"):
            raise ValueError(f"template field {{{name}}}: conversion !{conv} is not allowed")
        if "{" in spec:
            raise ValueError(f"template field {{{name}}}: nested fields in a format spec are not allowed")
        if spec:
            try:
                format(1.5, spec)
            except ValueError:
                try:
                    format("x", spec)
                except ValueError as exc:
                    raise ValueError(f"template field {{{name}}}: bad format spec {spec!r}") from exc
        names.append(name)
    return names


class Template:
    """A pre-parsed template; :meth:`render` is called only when an alarm changes state."""

    __slots__ = ("_parts", "names", "text")

    def __init__(self, text: str) -> None:
        check_template(text)
        self.text = text
        self._parts = _parse(text)
        self.names = tuple(name for _l, name, _c, _s in self._parts if name is not None)

    def render(self, fields: Mapping[str, object]) -> str:
        out: list[str] = []
        for literal, name, conv, spec in self._parts:
            out.append(literal)
            if name is None:
                continue
            if name not in fields:
                out.append("?")
                continue
            value = fields[name]
            if value is None:
                out.append("n/a")
                continue
            if conv == "r":
                value = repr(value)
            elif conv == "s":
                value = str(value)
            try:
                out.append(format(value, spec))
            except (ValueError, TypeError):
                out.append(str(value))
        return "".join(out)

    def __repr__(self) -> str:
        return f"Template({self.text!r})"
