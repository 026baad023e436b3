"""Errors of fleet operations (under :class:`cloud.runtime.errors.CloudError`)::

    CloudError
    └── FleetError
        └── CommandRefused   the cloud refuses a command (reason code as the edge's; API → 422)
"""

from __future__ import annotations

from cloud.runtime.errors import CloudError


class FleetError(CloudError):
    """Root of the fleet-operations errors."""


class CommandRefused(FleetError):
    """A command the cloud will not send. ``reason`` uses the edge's codes (``unknown_point``,
    ``not_writable``, ``out_of_range``, ``bad_value``) plus the cloud's own (``unknown_profile``,
    ``no_gateway``), so the audit trail reads the same whichever side refused."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}")
