"""Routing choices: duty rosters with time zones, skills, buildings, star level vs open load."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

import psycopg

from cloud.ops.routing.repo import chain, route
from cloud.ops.routing.roster import Shift, next_shift_start, on_duty
from cloud.ops.routing.scoring import Candidate, choose, score
from tests.support.workorders import DAY, NIGHT, add_butler

MON_10_SH = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)   # Monday 10:00 in Shanghai
MON_23_SH = datetime(2026, 1, 5, 15, 0, tzinfo=UTC)  # Monday 23:00 in Shanghai
TUE_03_SH = datetime(2026, 1, 5, 19, 0, tzinfo=UTC)  # Tuesday 03:00 in Shanghai


def test_roster_respects_time_zone_and_midnight() -> None:
    night = [Shift(0, time(20), time(8))]  # Monday 20:00 → Tuesday 08:00
    assert on_duty(night, "Asia/Shanghai", MON_23_SH)
    assert on_duty(night, "Asia/Shanghai", TUE_03_SH)
    assert not on_duty(night, "Asia/Shanghai", MON_10_SH)
    # the same instant is Monday 02:00 in UTC: outside the shift when the roster is in UTC
    assert not on_duty(night, "UTC", MON_10_SH)
    assert on_duty([], "Asia/Shanghai", MON_10_SH)  # no roster: always on duty
    start = next_shift_start(night, "Asia/Shanghai", MON_10_SH)
    assert start is not None
    assert start.astimezone(UTC) == datetime(2026, 1, 5, 12, 0, tzinfo=UTC)


def cand(i: int, star: int, load: int, duty: bool = True, kind: str = "full_time",
         skills: tuple[str, ...] = ("elevator",), buildings: tuple[str, ...] = ()) -> Candidate:
    return Candidate(i, f"b{i}", kind, star, load, duty, frozenset(skills), frozenset(buildings))


def test_score_weighs_star_against_load() -> None:
    five_busy, three_idle, three_one = cand(1, 5, 2), cand(2, 3, 0), cand(3, 3, 1)
    assert score(three_idle, None) > score(five_busy, None) > score(three_one, None)
    choice = choose([five_busy, three_idle, three_one], "elevator", None)
    assert choice is not None
    assert choice.butler_id == 2


def test_choice_filters_skill_duty_volunteers_and_buildings() -> None:
    people = [
        cand(1, 5, 0, skills=("water",)),                 # wrong skill
        cand(2, 5, 0, kind="volunteer"),                  # volunteers only by hand
        cand(3, 1, 4, duty=True),                         # on duty, weak
        cand(4, 5, 0, duty=False),                        # strong, off duty
        cand(5, 5, 0, buildings=("b9",)),                 # another building
    ]
    choice = choose(people, "elevator", "b1")
    assert choice is not None
    assert choice.butler_id == 3
    assert choose(people, "access", "b1") is None
    only_off = choose([cand(4, 5, 0, duty=False)], "elevator", "b1")
    assert only_off is not None
    assert not only_off.on_duty


async def test_route_in_database_uses_roster_and_load(conn: psycopg.AsyncConnection[Any]) -> None:
    day = await add_butler(conn, "白班", shifts=DAY, skills=("elevator",))
    night = await add_butler(conn, "夜班", shifts=NIGHT, skills=("elevator",))
    day_choice = await route(conn, "c1", "elevator", "b1", MON_10_SH)
    night_choice = await route(conn, "c1", "elevator", "b1", MON_23_SH)
    assert day_choice is not None
    assert night_choice is not None
    assert (day_choice.butler_id, night_choice.butler_id) == (day, night)
    # nobody with the skill: the team lead takes it
    lead = await add_butler(conn, "组长", role="team_lead", skills=())
    fallback = await route(conn, "c1", "access", None, MON_10_SH)
    assert fallback is not None
    assert fallback.butler_id == lead


async def test_chain_follows_manager_links(conn: psycopg.AsyncConnection[Any]) -> None:
    manager = await add_butler(conn, "经理", role="manager")
    lead = await add_butler(conn, "组长", role="team_lead", manager_id=manager)
    butler = await add_butler(conn, "管家", manager_id=lead)
    assert await chain(conn, butler, "c1") == [lead, manager]
    loose = await add_butler(conn, "新人")
    assert await chain(conn, loose, "c1") == [lead, manager]
