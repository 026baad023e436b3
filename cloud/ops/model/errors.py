"""Errors of alarms, work orders, routing and notifications (all under :class:`cloud.runtime.errors.CloudError`)::

    CloudError
    └── WorkOrderError
        ├── NotFound              the alarm / work order / butler does not exist (API → 404)
        ├── IllegalTransition     the action is not allowed from the current state (API → 409)
        ├── NotAllowed            the actor may not do this (API → 403)
        └── InvalidRequest        a value is wrong (rating out of range, …) (API → 422)
"""

from __future__ import annotations

from cloud.runtime.errors import CloudError


class WorkOrderError(CloudError):
    """Root of the alarm / work-order / routing / notification errors."""

    code = "work_order_error"


class NotFound(WorkOrderError):
    code = "not_found"


class NotAllowed(WorkOrderError):
    code = "not_allowed"


class InvalidRequest(WorkOrderError):
    code = "invalid"


class IllegalTransition(WorkOrderError):
    """``action`` is not allowed in ``state``; ``allowed`` lists what is."""

    code = "illegal_transition"

    def __init__(self, state: str, action: str, allowed: list[str]) -> None:
        self.state = state
        self.action = action
        self.allowed = allowed
        super().__init__(
            f"cannot {action} a work order that is {state}; allowed: {', '.join(allowed) or 'nothing (final state)'}"
        )
