"""A contractor's contract SLA measured on the orders of its field staff (real PostgreSQL, pinned times)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from cloud.ops.maintenance.contracts import add_contract, compliance
from cloud.ops.model.policy import Policy
from cloud.ops.reports.manager import build
from cloud.ops.reports.tariffs import shipped
from tests.support.workorders import add_butler

T0 = datetime(2027, 1, 10, 2, 0, tzinfo=UTC)


async def test_contract_compliance_and_report_section(full: Any, policy: Policy) -> None:
    conn, _, _ = full
    cur = await conn.execute("INSERT INTO contractors (name, created_at) VALUES ('迅达', %s) RETURNING id", (T0,))
    company = (await cur.fetchone())[0]
    field = await add_butler(conn, "迅达张工", community="cp", skills=("elevator",))
    await conn.execute("UPDATE butlers SET contractor_id = %s WHERE id = %s", (company, field))
    own = (await (await conn.execute("SELECT id FROM butlers WHERE name = '王师傅'")).fetchone())[0]
    await add_contract(conn, contractor_id=company, community="cp", skill="elevator",
                       on_site_within=timedelta(minutes=30), resolve_within=timedelta(hours=2),
                       starts_on=date(2027, 1, 1), now=T0)

    async def order(assignee: int, created: datetime, on_site: timedelta | None, resolved: timedelta | None) -> None:
        await conn.execute(
            "INSERT INTO work_orders (community, skill, origin, title, priority, state, assignee_id, respond_due,"
            " on_site_due, resolve_due, on_site_at, resolved_at, created_at, updated_at)"
            " VALUES ('cp', 'elevator', 'staff', '困人', 'P0', 'on_site', %s, %s, %s, %s, %s, %s, %s, %s)",
            (assignee, created, created, created, created + on_site if on_site else None,
             created + resolved if resolved else None, created, created))

    await order(field, T0, timedelta(minutes=20), timedelta(hours=1))     # both in time
    await order(field, T0 + timedelta(days=1), timedelta(minutes=45), timedelta(hours=3))  # both late
    await order(field, datetime(2027, 1, 31, 15, 50, tzinfo=UTC), None, None)  # 23:50 local: not judged yet
    await order(own, T0, timedelta(hours=5), None)  # the property's own butler: not the contractor's

    end = datetime(2027, 1, 31, 16, 0, tzinfo=UTC)  # the end of January in Shanghai
    (row,) = await compliance(conn, "cp", datetime(2026, 12, 31, 16, 0, tzinfo=UTC), end)
    assert (row.contractor, row.orders, row.on_site_within_min) == ("迅达", 3, 30.0)
    assert (row.on_site_ok, row.on_site_judged, row.on_site_ratio) == (1, 2, 0.5)
    assert (row.resolve_ok, row.resolve_judged, row.resolve_ratio) == (1, 2, 0.5)

    report = await build(conn, "cp", "month", date(2027, 1, 1), shipped(), end + timedelta(days=3))
    assert report["contractors"] == [{"contractor": "迅达", "skill": "elevator", "on_site_within_min": 30.0,
                                      "resolve_within_min": 120.0, "orders": 3, "on_site_ratio": 0.5,
                                      "resolve_ratio": 0.5}]
