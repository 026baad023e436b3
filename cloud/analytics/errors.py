"""Errors of the analytics part (a branch of :class:`cloud.runtime.errors.CloudError`)."""

from __future__ import annotations

from cloud.runtime.errors import CloudError


class AnalyticsError(CloudError):
    """Root of what :mod:`cloud.analytics` raises on purpose."""


class ModelFormatError(AnalyticsError):
    """A stored model's parameters do not match the detector that should read them.

    Raised instead of guessing: a model row written by another version of a detector must be
    retrained, never half-interpreted.
    """


class NotEnoughData(AnalyticsError):
    """A device has too little history in the training window to fit a baseline."""
