"""Routing sends a kind of work to the contract holder (real PostgreSQL, pinned instants): planned
lift maintenance to the licensed company's field staff, a lift entrapment to the holder after the
butler is told, repairs the contract does not cover to the property's butler; validity is the
community's local calendar; no contract, or no staff of the holder left, falls back to the butlers."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from cloud.ops.maintenance.contracts import add_contract, update_contract
from cloud.ops.maintenance.scheduler import run_once
from cloud.ops.maintenance.templates import shipped
from cloud.ops.model.actors import Actor
from cloud.ops.model.policy import Policy, Priority
from cloud.ops.routing.contracts import work_of
from cloud.ops.workorders import repo as wo_repo
from tests.support.workorders import add_butler

# Friday 2027-01-29 00:30 in Shanghai, still Thursday 16:30 UTC: the local calendar decides validity
NOW = datetime(2027, 1, 28, 16, 30, tzinfo=UTC)
LOCAL_TODAY = date(2027, 1, 29)


async def _company(conn: Any) -> tuple[int, int]:
    cur = await conn.execute("INSERT INTO contractors (name, created_at) VALUES ('迅达', %s) RETURNING id", (NOW,))
    company = int((await cur.fetchone())[0])
    field = await add_butler(conn, "迅达张工", community="cp", skills=())
    await conn.execute("UPDATE butlers SET contractor_id = %s WHERE id = %s", (company, field))
    return company, field


async def _order(conn: Any, policy: Policy, priority: Priority, origin: str = "staff", skill: str = "elevator") -> Any:
    wo = await wo_repo.open_order(conn, policy, wo_repo.NewOrder(
        community="cp", title="电梯 / lift", origin=origin, priority=priority, skill=skill, device="lift-1",
        device_kind="elevator", building="b7"), NOW, Actor.system("test"))
    assert wo is not None
    return wo


async def _trail(conn: Any, wo_id: int) -> list[str]:
    cur = await conn.execute("SELECT action FROM work_order_trail WHERE work_order_id = %s ORDER BY id", (wo_id,))
    return [r[0] for r in await cur.fetchall()]


def test_kind_of_work_of_an_order() -> None:
    assert work_of("planned", "P3") == "maintenance"
    assert work_of("alarm", "P0") == "rescue"
    assert work_of("resident", "P2") == "repair"


async def test_planned_lift_maintenance_goes_to_the_contract_holder(full: Any, policy: Policy) -> None:
    conn, _, _ = full
    own = (await (await conn.execute("SELECT id FROM butlers WHERE name = '王师傅'")).fetchone())[0]
    company, field = await _company(conn)
    await add_contract(conn, contractor_id=company, community="cp", skill="elevator", work=["maintenance"],
                       on_site_within=timedelta(hours=24), resolve_within=timedelta(hours=48),
                       starts_on=LOCAL_TODAY, now=NOW)
    catalog = shipped()
    from cloud.ops.maintenance import repo

    await repo.create_plan(conn, catalog, community="cp", scope="device", target="lift-1",
                           template="lift.half_monthly", starts_on=LOCAL_TODAY + timedelta(days=1), now=NOW)
    (planned,) = (await run_once(conn, policy, catalog, NOW)).opened
    assert (await wo_repo.get(conn, planned))["assignee_id"] == field
    # a repair of the same skill: not covered by this contract → the property's butler
    repair = await _order(conn, policy, "P2")
    assert repair["assignee_id"] == own


async def test_entrapment_butler_first_then_the_holder(full: Any, policy: Policy) -> None:
    conn, _, _ = full
    own = (await (await conn.execute("SELECT id FROM butlers WHERE name = '王师傅'")).fetchone())[0]
    company, field = await _company(conn)
    await add_contract(conn, contractor_id=company, community="cp", skill="elevator", work=["maintenance", "rescue"],
                       on_site_within=timedelta(minutes=30), resolve_within=timedelta(hours=2),
                       starts_on=LOCAL_TODAY, now=NOW)
    wo = await _order(conn, policy, "P0", origin="alarm")
    assert wo["assignee_id"] == field
    assert await _trail(conn, wo["id"]) == ["opened", "butler_first", "assign"]
    cur = await conn.execute("SELECT butler_id, event FROM notifications WHERE work_order_id = %s AND channel = 'inbox'"
                             " ORDER BY id", (wo["id"],))
    assert await cur.fetchall() == [(own, "work_order.rescue_called"), (field, "work_order.assigned")]
    # escalated past the first rescuer: the holder's next staff member; the butler is not told again
    second = await add_butler(conn, "迅达李工", community="cp", skills=())
    await conn.execute("UPDATE butlers SET contractor_id = %s WHERE id = %s", (company, second))
    moved = await wo_repo.auto_assign(conn, policy, wo, NOW + timedelta(minutes=3), exclude=frozenset({field}))
    assert moved["assignee_id"] == second
    assert (await _trail(conn, wo["id"])).count("butler_first") == 1


async def test_validity_is_the_local_calendar_and_fallbacks(full: Any, policy: Policy) -> None:
    conn, _, _ = full
    own = (await (await conn.execute("SELECT id FROM butlers WHERE name = '王师傅'")).fetchone())[0]
    company, field = await _company(conn)
    # starts "tomorrow" in UTC terms but today in Shanghai: already in force
    contract = await add_contract(conn, contractor_id=company, community="cp", skill="elevator", work=["repair"],
                                  on_site_within=timedelta(hours=1), resolve_within=timedelta(hours=8),
                                  starts_on=LOCAL_TODAY, now=NOW)
    assert (await _order(conn, policy, "P2"))["assignee_id"] == field
    # another skill: no contract → the property's butler
    assert (await _order(conn, policy, "P2", skill="water"))["assignee_id"] == own
    # ended yesterday (local): no longer routed to the holder
    await update_contract(conn, contract, on_site_within=timedelta(hours=1), resolve_within=timedelta(hours=8),
                          starts_on=LOCAL_TODAY - timedelta(days=30), ends_on=LOCAL_TODAY - timedelta(days=1),
                          work=["repair"], reference="")
    assert (await _order(conn, policy, "P2"))["assignee_id"] == own
    # in force again, but the holder's only field staff member is inactive → the property's butler
    await update_contract(conn, contract, on_site_within=timedelta(hours=1), resolve_within=timedelta(hours=8),
                          starts_on=LOCAL_TODAY, ends_on=None, work=["repair"], reference="")
    await conn.execute("UPDATE butlers SET active = false WHERE id = %s", (field,))
    assert (await _order(conn, policy, "P2"))["assignee_id"] == own
