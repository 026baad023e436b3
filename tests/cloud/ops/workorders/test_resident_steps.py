"""Residents kept informed: every step of their report's work order (received, assigned with the
butler's name, on the way, on site, resolved, closed) lands in their inbox and is announced live
over LISTEN/NOTIFY; a resident whose report was linked to an open order hears from then on; the
butler's phone and other residents' data never appear. Reopening within the policy's window
(pinned clock): a resolved order goes back to its butler, a rated (closed) one gets a follow-up."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from cloud.ops.delivery.hub import resident_backlog, resident_hub, resident_recent
from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import InvalidRequest, NotAllowed
from cloud.ops.model.policy import Policy
from cloud.ops.workorders import repo
from cloud.ops.workorders.reports import Report, rate, reopen, submit_report
from guanjia.core.clock import ManualClock
from tests.support.workorders import add_butler

ALICE, BOB = 501, 502


async def steps(conn: psycopg.AsyncConnection[Any], user: int) -> list[tuple[str, str | None]]:
    return [(m["payload"]["step"], m["payload"]["butler"]) for m in await resident_backlog(conn, user, 0)]


async def test_every_step_reaches_the_reporter(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                               policy: Policy) -> None:
    butler = await add_butler(conn, "陈师傅", phone="13900001111", buildings=("b1",))
    resident = Actor("user", ALICE, "李女士", "resident")
    wo, linked = await submit_report(conn, policy, Report(community="c1", text="楼道灯不亮", building="b1",
                                                          reporter_user_id=ALICE, reporter_phone="13812341234"),
                                     clock.now(), resident)
    assert not linked
    me = Actor.butler(butler, "陈师傅")
    for action in ("accept", "depart", "arrive", "resolve"):
        clock.advance(timedelta(minutes=3))
        await repo.transition(conn, policy, wo["id"], action, me, clock.now())
    await rate(conn, policy, wo["id"], 5, "很快", resident, clock.now())
    assert await steps(conn, ALICE) == [("received", None), ("assigned", "陈师傅"), ("on_the_way", "陈师傅"),
                                        ("on_site", "陈师傅"), ("resolved", "陈师傅"), ("closed", "陈师傅")]
    cur = await conn.execute("SELECT payload::text FROM notifications WHERE user_id = %s", (ALICE,))
    for (text,) in await cur.fetchall():
        assert "13900001111" not in text  # the butler's phone is not the resident's business
        assert "13812341234" not in text
    newest = await resident_recent(conn, ALICE, 2)
    assert [m["payload"]["step"] for m in newest] == ["closed", "resolved"]


async def test_linked_report_hears_from_then_on(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                policy: Policy) -> None:
    butler = await add_butler(conn, "林师傅")
    first, _ = await submit_report(conn, policy, Report(community="c1", text="3号梯异响", device="lift-3",
                                                        reporter_user_id=ALICE), clock.now(),
                                   Actor("user", ALICE, "李女士", "resident"))
    clock.advance(timedelta(minutes=1))
    second, linked = await submit_report(conn, policy, Report(community="c1", text="电梯有怪声", device="lift-3",
                                                              reporter_user_id=BOB), clock.now(),
                                         Actor("user", BOB, "王先生", "resident"))
    assert linked
    assert second["id"] == first["id"]
    assert await steps(conn, BOB) == [("received", "林师傅")]
    await repo.transition(conn, policy, first["id"], "accept", Actor.butler(butler), clock.now())
    await repo.transition(conn, policy, first["id"], "arrive", Actor.butler(butler), clock.now())
    assert [s for s, _ in await steps(conn, ALICE)] == ["received", "assigned", "on_site"]
    assert [s for s, _ in await steps(conn, BOB)] == ["received", "on_site"]


async def test_live_over_listen_notify(conn: psycopg.AsyncConnection[Any], wo_db: str, clock: ManualClock,
                                       policy: Policy) -> None:
    await add_butler(conn, "周师傅")
    async with resident_hub(wo_db) as hub, hub.subscribe(ALICE) as mine, hub.subscribe(BOB) as theirs:
        await asyncio.wait_for(hub.connected.wait(), 10)
        await submit_report(conn, policy, Report(community="c1", text="漏水", reporter_user_id=ALICE), clock.now(),
                            Actor("user", ALICE, "李女士", "resident"))
        received = await asyncio.wait_for(mine.get(), 10)
        assigned = await asyncio.wait_for(mine.get(), 10)
        assert (received["event"], assigned["event"]) == ("resident.received", "resident.assigned")
        assert assigned["payload"]["butler"] == "周师傅"
        assert received["id"] < assigned["id"]
        assert theirs.empty()


async def resolved_order(conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy) -> tuple[int, int]:
    butler = await add_butler(conn, "陈师傅")
    wo, _ = await submit_report(conn, policy, Report(community="c1", text="水龙头漏水", reporter_user_id=ALICE),
                                clock.now(), Actor("user", ALICE, "李女士", "resident"))
    for action in ("accept", "arrive", "resolve"):
        await repo.transition(conn, policy, wo["id"], action, Actor.butler(butler), clock.now())
    return wo["id"], butler


async def test_reopen_within_the_window_goes_back_to_the_butler(conn: psycopg.AsyncConnection[Any],
                                                                clock: ManualClock, policy: Policy) -> None:
    wo_id, butler = await resolved_order(conn, clock, policy)
    with pytest.raises(NotAllowed):
        await reopen(conn, policy, wo_id, "还在漏", Actor("user", BOB, "王先生", "resident"), clock.now())
    with pytest.raises(InvalidRequest, match="still wrong"):
        await reopen(conn, policy, wo_id, "  ", Actor("user", ALICE, "李女士", "resident"), clock.now())
    clock.advance(policy.resident_reopen_window - timedelta(minutes=1))
    wo = await reopen(conn, policy, wo_id, "还在漏", Actor("user", ALICE, "李女士", "resident"), clock.now())
    assert (wo["id"], wo["state"], wo["assignee_id"]) == (wo_id, "assigned", butler)
    assert (await steps(conn, ALICE))[-1] == ("reopened", "陈师傅")
    trail = await repo.trail(conn, wo_id)
    assert (trail[-1]["action"], trail[-1]["note"]) == ("reopen", "还在漏")


async def test_reopen_after_the_window_is_refused(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                  policy: Policy) -> None:
    wo_id, _ = await resolved_order(conn, clock, policy)
    clock.advance(policy.resident_reopen_window + timedelta(minutes=1))
    with pytest.raises(InvalidRequest, match="more than 7 days ago"):
        await reopen(conn, policy, wo_id, "还在漏", Actor("user", ALICE, "李女士", "resident"), clock.now())


async def test_reopen_of_a_rated_order_opens_a_follow_up(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                                         policy: Policy) -> None:
    wo_id, _ = await resolved_order(conn, clock, policy)
    resident = Actor("user", ALICE, "李女士", "resident")
    await rate(conn, policy, wo_id, 4, "", resident, clock.now())
    clock.advance(timedelta(days=2))
    follow_up = await reopen(conn, policy, wo_id, "又漏了", resident, clock.now())
    assert follow_up["id"] != wo_id
    assert follow_up["title"].startswith(f"#{wo_id} ")
    assert follow_up["reporter_user_id"] == ALICE
    assert (await repo.get(conn, wo_id))["state"] == "closed"  # the rated order and its record stand
    trail = await repo.trail(conn, wo_id)
    assert (trail[-1]["action"], trail[-1]["data"]) == ("followed_up", {"work_order": follow_up["id"]})
    assert [s for s, _ in await steps(conn, ALICE)][-2:] == ["received", "assigned"]
