"""The SQL behind the policy's tenancy scopes: which community a resource id belongs to, the
butler record of a user, and who an order is assigned to or was reported by.

Kept apart from :mod:`cloud.auth.deps` (which speaks HTTP) so the queries live in one query
module, as every other table's do. Every function answers ``None`` for an unknown id: the caller
treats "unknown" and "another tenant's" the same (404), so ids cannot be probed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from psycopg import AsyncConnection

#: path/query parameter name → SQL giving the communities of that resource id
_COMMUNITY_SQL: Final[dict[str, str]] = {
    "device_id": "SELECT c.code FROM devices d JOIN communities c ON c.id = d.community_id WHERE d.id = %s",
    "gateway_id": "SELECT c.code FROM gateways g JOIN communities c ON c.id = g.community_id WHERE g.id = %s",
    "alarm_id": "SELECT community FROM alarms WHERE id = %s",
    "wo_id": "SELECT community FROM work_orders WHERE id = %s",
    "work_order_id": "SELECT community FROM work_orders WHERE id = %s",
    "butler_id": "SELECT community FROM butlers WHERE id = %s",
    "complaint_id": "SELECT community FROM complaints WHERE id = %s",
    "redemption_id": "SELECT community FROM points_redemptions WHERE id = %s",
    "user_id": "SELECT community FROM user_communities WHERE user_id = %s",
    "plan_id": "SELECT community FROM maintenance_plans WHERE id = %s",
    "route_id": "SELECT community FROM inspection_routes WHERE id = %s",
    "contract_id": "SELECT community FROM contractor_contracts WHERE id = %s",
}
TENANT_ID_PARAMS: Final = frozenset(_COMMUNITY_SQL)
ORDER_ID_PARAMS: Final = frozenset({"wo_id", "work_order_id"})
_PG_BIGINT = 2**63


@dataclass(frozen=True, slots=True)
class ButlerRecord:
    id: int
    role: str  # butler | team_lead | manager

    @property
    def leads(self) -> bool:
        """Team leads and managers see every order of their community, not only their own."""
        return self.role != "butler"


@dataclass(frozen=True, slots=True)
class OrderParties:
    community: str
    assignee_id: int | None
    reporter_user_id: int | None
    contractor_id: int | None = None
    """The contractor company of the assignee (None for the property's own butlers)."""


def as_id(raw: object) -> int | None:
    """A path/query value as a database id, or None when it is not one (validation answers 422)."""
    try:
        value = int(str(raw))
    except ValueError:
        return None
    return value if -_PG_BIGINT <= value < _PG_BIGINT else None


async def communities_of(conn: AsyncConnection[Any], param: str, resource_id: int) -> set[str]:
    cur = await conn.execute(_COMMUNITY_SQL[param], (resource_id,))
    return {str(r[0]) for r in await cur.fetchall() if r[0] is not None}


async def butler_record(conn: AsyncConnection[Any], user_id: int) -> ButlerRecord | None:
    cur = await conn.execute("SELECT id, role FROM butlers WHERE user_id = %s AND active ORDER BY id LIMIT 1",
                             (user_id,))
    row = await cur.fetchone()
    return ButlerRecord(int(row[0]), str(row[1])) if row else None


async def order_parties(conn: AsyncConnection[Any], wo_id: int) -> OrderParties | None:
    cur = await conn.execute(
        "SELECT w.community, w.assignee_id, w.reporter_user_id, b.contractor_id FROM work_orders w"
        " LEFT JOIN butlers b ON b.id = w.assignee_id WHERE w.id = %s", (wo_id,))
    row = await cur.fetchone()
    return OrderParties(str(row[0]), row[1], row[2], row[3]) if row else None


async def contractor_of(conn: AsyncConnection[Any], user_id: int) -> int | None:
    """The contractor company of a ``contractor`` user (None when not linked: they reach nothing)."""
    cur = await conn.execute("SELECT contractor_id FROM users WHERE id = %s", (user_id,))
    row = await cur.fetchone()
    return int(row[0]) if row and row[0] is not None else None


async def reported_by(conn: AsyncConnection[Any], wo_id: int, user_id: int) -> bool:
    """Whether ``user_id`` filed the order or a report linked to it."""
    cur = await conn.execute(
        "SELECT 1 FROM work_orders WHERE id = %(wo)s AND reporter_user_id = %(u)s"
        " UNION ALL SELECT 1 FROM resident_reports WHERE work_order_id = %(wo)s AND reporter_user_id = %(u)s"
        " LIMIT 1", {"wo": wo_id, "u": user_id})
    return await cur.fetchone() is not None
