"""The four roles of the product and what each may do, in one place."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """A user's single role.

    * ``admin`` — operates the platform: every community, user management.
    * ``engineer`` — watches device health of their communities, handles alarms, sees reports.
    * ``butler`` — 管家: works the work orders routed to them (the mobile inbox).
    * ``resident`` — reports faults and rates finished repairs in their community.
    * ``contractor`` — 维保单位: a contractor company's user; sees and moves only the work orders
      assigned to their company's field staff, in their communities (issue 17).
    """

    admin = "admin"
    engineer = "engineer"
    butler = "butler"
    resident = "resident"
    contractor = "contractor"


#: roles that may look at device health, telemetry, gateways and alarms
STAFF_ROLES: frozenset[Role] = frozenset({Role.admin, Role.engineer})
#: roles that may see every work order of their communities (not only their own)
WORK_ORDER_MANAGERS: frozenset[Role] = frozenset({Role.admin, Role.engineer})
