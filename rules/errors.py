"""The rules package's error root (see :mod:`guanjia.core.errors` for the whole tree)."""

from __future__ import annotations

from guanjia.core.errors import GuanjiaError


class RuleError(GuanjiaError):
    """A rule set cannot be used as asked (for example a snapshot from an unknown format version).

    Mistakes in rule *files* are :class:`guanjia.core.errors.ConfigError` instead, because they carry
    ``file:line: field: message`` issues for the person who wrote them.
    """
