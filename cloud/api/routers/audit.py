"""``/api/v1/audit``: the admin audit log (:mod:`cloud.db.audit`), newest first; admins only."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from pydantic import BaseModel

from cloud.api.deps import AdminUser, PoolDep
from cloud.db.audit import AuditRow, entries

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


class AuditOut(BaseModel):
    id: int
    at: dt.datetime
    actor: str
    action: str
    community: str | None
    target: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, r: AuditRow) -> AuditOut:
        return cls(id=r.id, at=r.at, actor=r.actor, action=r.action, community=r.community, target=r.target,
                   detail=r.detail)


@router.get("", response_model=list[AuditOut], summary="Administrative changes, newest first")
async def list_audit(pool: PoolDep, user: AdminUser, limit: Annotated[int, Query(ge=1, le=1000)] = 100,
                     before_id: Annotated[int | None, Query(ge=1, le=2**62)] = None,
                     community: Annotated[str | None, Query(max_length=64)] = None,
                     action: Annotated[str | None, Query(max_length=64,
                                                         description="exact, or a family: butler.")] = None,
                     actor: Annotated[str | None, Query(max_length=100)] = None,
                     ) -> list[AuditOut]:
    async with pool.connection() as conn:
        rows = await entries(conn, limit=limit, before_id=before_id, community=community, action=action,
                             actor=actor)
    return [AuditOut.of(r) for r in rows]
