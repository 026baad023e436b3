"""Errors of the device-profile package.

``ProfileError`` is the package root (a :class:`~guanjia.core.errors.GuanjiaError`); a *file* that is
wrong raises :class:`~guanjia.core.errors.ConfigError` instead, because that carries
``file:line: field: message`` issues the CLI prints as they are::

    GuanjiaError
    ├── ConfigError          a profile YAML file is invalid (structure or semantics)
    └── ProfileError         a profile is asked for that does not exist, or misused in code
        └── CodecError       a value cannot be encoded into / decoded from its registers
"""

from __future__ import annotations

from guanjia.core.errors import GuanjiaError


class ProfileError(GuanjiaError):
    """A device profile is unknown or used in a way it does not allow."""


class CodecError(ProfileError):
    """A value does not fit its point's data type, or registers do not decode as that type."""
