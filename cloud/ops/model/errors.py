"""Errors of alarms, work orders, routing and notifications (all under :class:`cloud.runtime.errors.CloudError`)::

    CloudError
    └── WorkOrderError
        ├── NotFound              the alarm / work order / butler does not exist (API → 404)
        ├── IllegalTransition     the action is not allowed from the current state (API → 409)
        ├── NotAllowed            the actor may not do this (API → 403)
        └── InvalidRequest        a value is wrong (rating out of range, …) (API → 422)
"""

from __future__ import annotations

from typing import TypeVar

from cloud.runtime.errors import CloudError

T = TypeVar("T")


class WorkOrderError(CloudError):
    """Root of the alarm / work-order / routing / notification errors."""

    code = "work_order_error"


class NotFound(WorkOrderError):
    code = "not_found"


def found(row: T | None, missing: str) -> T:
    """``row``, or :class:`NotFound` with the ``missing`` text (a repository's ``get_x`` reads one
    row with :func:`cloud.db.rows.fetch_one` and says in its own words what does not exist)."""
    if row is None:
        raise NotFound(missing)
    return row


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
