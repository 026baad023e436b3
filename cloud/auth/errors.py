"""Errors of the auth layer; the API maps them to 400/404/409 through the JSON error shape."""

from __future__ import annotations

from guanjia.core.errors import GuanjiaError

try:  # the cloud's own root, when the storage layer provides it
    from cloud.runtime.errors import CloudError as _Root
except ImportError:  # pragma: no cover - only while cloud.runtime.errors does not exist yet
    _Root = GuanjiaError  # type: ignore[assignment,misc]


class AuthError(_Root):
    """Root of the auth layer's deliberate errors."""


class UserExists(AuthError):
    """A user with that username already exists."""


class UserNotFound(AuthError):
    """No such user (or not visible to the caller)."""


class WeakPassword(AuthError):
    """The password does not meet the minimum rules."""
