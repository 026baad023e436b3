"""The demo's property-operations history, seeded through the product's own write path against a
real PostgreSQL on a pinned instant: a completed lift maintenance with checklist, photo and both
signatures, the next one open, a route with a missed-checkpoint alarm, the contractor as the
lift's maintainer; a second run changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cloud.auth.seed import seed_demo_users
from cloud.demo_operations import seed_operations
from cloud.ops.maintenance import repo
from cloud.ops.maintenance.scheduler import plan_status
from cloud.ops.maintenance.templates import shipped
from cloud.ops.model.policy import Policy

NOW = datetime(2027, 3, 1, 6, 10, tzinfo=UTC)  # 14:10 in Shanghai


async def test_demo_operations_seed(full: Any, policy: Policy, tmp_path: Path) -> None:
    conn, _, _ = full
    await seed_demo_users(conn, "cp")
    assert await seed_operations(conn, policy, "cp", tmp_path, NOW) is True
    assert await seed_operations(conn, policy, "cp", tmp_path, NOW + timedelta(minutes=5)) is False

    cur = await conn.execute("SELECT state, checklist, maintainer_signature IS NOT NULL, staff_signature IS NOT NULL,"
                             " work_order_id FROM maintenance_orders ORDER BY id")
    done, upcoming = await cur.fetchall()
    assert done[0] == "completed"
    assert len(done[1]) == 9
    assert done[2]
    assert done[3]
    assert upcoming[0] == "open"
    cur = await conn.execute("SELECT photos, b.contractor_id IS NOT NULL FROM work_orders w"
                             " JOIN butlers b ON b.id = w.assignee_id WHERE w.id = %s", (done[4],))
    photos, contractor = await cur.fetchone()
    assert photos
    assert (tmp_path / "uploads" / "cp" / photos[0].rsplit("/", 1)[1]).exists()
    assert contractor  # the demo's lift contractor maintains the lift
    (plan,) = [p for p in await repo.active_plans(conn, "cp") if p.template == "lift.half_monthly"]
    (status,) = await plan_status(conn, shipped(), plan, NOW)
    assert status.compliant is True
    assert status.open_work_order == upcoming[4]
    cur = await conn.execute("SELECT count(*) FROM alarms WHERE rule = 'inspection_missed' AND active AND current")
    assert (await cur.fetchone())[0] == 1
    cur = await conn.execute("SELECT count(DISTINCT checkpoint_id) FROM inspection_scans")
    assert (await cur.fetchone())[0] == 3
    # the lift contractor's maintenance contract, in force, with the completed maintenance measured
    from cloud.ops.maintenance.views import contract_views

    (contract,) = await contract_views(conn, "cp", NOW)
    assert (contract.work, contract.valid, contract.reference) == (["maintenance"], True, "WB-DEMO-01")
    assert contract.orders == 1
