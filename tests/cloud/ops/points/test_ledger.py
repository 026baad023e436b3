"""The volunteers' points ledger: a volunteer's resolved task earns the policy's points once,
a full-timer's earns none; adjustments need a reason; redemption never overdraws, also when two
race; the database refuses any UPDATE or DELETE of an entry (append-only)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg
import pytest

from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import InvalidRequest
from cloud.ops.model.policy import Policy
from cloud.ops.points import ledger
from cloud.ops.workorders import repo
from cloud.ops.workorders.reports import Report, submit_report
from guanjia.core.clock import ManualClock
from tests.support.workorders import add_butler

STAFF = Actor("user", 1, "王经理", "admin")


async def resolved_by(conn: psycopg.AsyncConnection[Any], policy: Policy, clock: ManualClock, butler: int,
                      lead: int) -> int:
    wo, _ = await submit_report(conn, policy, Report(community="c1", text="楼道灯不亮"), clock.now(),
                                Actor("user", 9, "李女士", "resident"))
    if wo["assignee_id"] != butler:  # handed to the volunteer by the full-timer, as the rules say
        wo = await repo.transition(conn, policy, wo["id"], "reassign", Actor.butler(lead), clock.now(),
                                   assignee_id=butler)
    for action in ("accept", "arrive", "resolve"):
        await repo.transition(conn, policy, wo["id"], action, Actor.butler(butler), clock.now())
    return int(wo["id"])


async def test_tasks_earn_adjust_redeem(conn: psycopg.AsyncConnection[Any], wo_db: str, clock: ManualClock,
                                        policy: Policy) -> None:
    lead = await add_butler(conn, "全职管家", skills=("water",))
    volunteer = await add_butler(conn, "志愿者小陈", kind="volunteer", skills=())
    wo_id = await resolved_by(conn, policy, clock, volunteer, lead)
    assert await ledger.balance(conn, volunteer) == policy.points.per_skill.get("general", policy.points.default)
    earned = await ledger.balance(conn, volunteer)
    assert await ledger.award_task(conn, policy, await repo.get(conn, wo_id), STAFF, clock.now()) == 0  # once
    assert await ledger.balance(conn, lead) == 0
    with pytest.raises(InvalidRequest, match="reason"):
        await ledger.adjust(conn, volunteer, 10, " ", STAFF, clock.now())
    await ledger.adjust(conn, volunteer, 10, "社区活动协助", STAFF, clock.now())
    with pytest.raises(InvalidRequest, match="not enough points"):
        await ledger.redeem(conn, volunteer, earned + 11, "免费家电清洗", STAFF, clock.now())
    await ledger.redeem(conn, volunteer, earned + 10, "免费家电清洗", STAFF, clock.now())
    assert await ledger.balance(conn, volunteer) == 0
    kinds = [(e["kind"], e["delta"], e["actor_name"]) for e in await ledger.entries(conn, volunteer)]
    assert kinds == [("redeem", -(earned + 10), "王经理"), ("adjust", 10, "王经理"), ("task", earned, "志愿者小陈")]
    with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
        await conn.execute("UPDATE points_ledger SET delta = 1000")
    with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
        await conn.execute("DELETE FROM points_ledger")


async def test_racing_redemptions_do_not_overdraw(conn: psycopg.AsyncConnection[Any], wo_db: str,
                                                  clock: ManualClock) -> None:
    volunteer = await add_butler(conn, "志愿者小林", kind="volunteer")
    await ledger.adjust(conn, volunteer, 10, "开户奖励", STAFF, clock.now())

    async def spend() -> bool:
        async with await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as c:
            try:
                await ledger.redeem(c, volunteer, 8, "理发服务", STAFF, clock.now())
            except InvalidRequest:
                return False
            return True

    results = await asyncio.gather(*(spend() for _ in range(4)))
    assert sorted(results) == [False, False, False, True]
    assert await ledger.balance(conn, volunteer) == 2
