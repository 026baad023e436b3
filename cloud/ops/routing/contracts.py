"""Routing to the contract holder (维保合同): which kind of work an order is, and — when a valid
contract of the order's community and skill covers that kind — which of the holder's field staff
takes it.

Why here and not in the work-order code: the contract is a routing fact like a roster (who may
take this work today), so the decision sits beside :func:`cloud.ops.routing.repo.route` and uses
the same score (:func:`cloud.ops.routing.scoring.choose`) over the company's own staff. Contracts
themselves are managed in :mod:`cloud.ops.maintenance.contracts` (above routing in the layers).

Kinds of work (``contractor_contracts.work``, migration 420):

* ``maintenance`` — planned maintenance orders (origin ``planned``): a lift's half-monthly goes to
  the licensed maintenance company that holds the contract;
* ``rescue`` — emergencies (priority P0), e.g. a lift entrapment: the property's butler is told
  first (on duty, minutes away: comfort the passengers, keep people off the lift), then the order
  is assigned to the holder, whose contract SLA (arrival within 30 min) is measured on it;
* ``repair`` — any other order of the skill.

A contract is valid from ``starts_on`` to ``ends_on`` (inclusive, ``NULL`` = open-ended) in the
community's local calendar. With no valid contract, or no active field staff of the holder in the
community, routing falls back to the property's own butlers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from psycopg import AsyncConnection

from cloud.ops.routing.repo import candidates
from cloud.ops.routing.scoring import choose

Work = Literal["maintenance", "rescue", "repair"]
WORK: Final[tuple[Work, ...]] = ("maintenance", "rescue", "repair")


def work_of(origin: str, priority: str) -> Work:
    """The kind of work of an order, as contracts name it."""
    if origin == "planned":
        return "maintenance"
    return "rescue" if priority == "P0" else "repair"


@dataclass(frozen=True, slots=True)
class Holder:
    contract_id: int
    contractor_id: int
    contractor: str
    butler_id: int
    work: Work
    reason: str


_VALID_SQL = """
SELECT k.id, k.contractor_id, c.name
  FROM contractor_contracts k
  JOIN contractors c ON c.id = k.contractor_id
  LEFT JOIN communities m ON m.code = k.community
 WHERE k.community = %(community)s AND k.skill = %(skill)s AND %(work)s = ANY(k.work)
   AND k.starts_on <= (%(now)s AT TIME ZONE coalesce(m.timezone, 'Asia/Shanghai'))::date
   AND (k.ends_on IS NULL OR k.ends_on >= (%(now)s AT TIME ZONE coalesce(m.timezone, 'Asia/Shanghai'))::date)
 ORDER BY k.starts_on DESC, k.id DESC"""


async def holder(conn: AsyncConnection[Any], community: str, skill: str, work: Work, building: str | None,
                 now: datetime, exclude: frozenset[int] = frozenset()) -> Holder | None:
    """The holder's field staff member for this work, or ``None`` (no valid contract, nobody left)."""
    cur = await conn.execute(_VALID_SQL, {"community": community, "skill": skill, "work": work, "now": now})
    for contract_id, contractor_id, name in await cur.fetchall():
        staff = await candidates(conn, community, now, contractor_id=int(contractor_id))
        # the contract names the skill: every field staff member of the holder may take its work
        choice = choose(staff, "general", building, exclude)
        if choice is not None:
            return Holder(int(contract_id), int(contractor_id), str(name), choice.butler_id, work,
                          f"合同 #{contract_id} {name}（{work}）/ contract #{contract_id} holder {name} ({work}); "
                          + choice.reason)
    return None
