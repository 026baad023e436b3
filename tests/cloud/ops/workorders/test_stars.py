"""Star levels 1–5 from ratings, SLA results, residents' likes, years of service and
certifications, weighted by the policy's ``stars`` rule (checked when loaded: the weights add up to
1, an error names the file, line and field); a like is the reporter's, once per order, and moves
the butler's stars with a pinned clock."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cloud.ops.model.actors import Actor
from cloud.ops.model.errors import IllegalTransition, InvalidRequest, NotAllowed
from cloud.ops.model.policy import DEFAULT_POLICY, Policy, StarRule, load_policy
from cloud.ops.workorders import repo
from cloud.ops.workorders.performance import compute
from cloud.ops.workorders.qualifications import Certification, replace
from cloud.ops.workorders.reports import Report, like, rate, submit_report
from guanjia.core.clock import ManualClock
from guanjia.core.errors import ConfigError
from tests.support.workorders import add_butler


def test_every_part_counts() -> None:
    newcomer = compute(0, 0, 0, 0, 0)
    assert newcomer.star_level == 3  # the priors: a new butler starts at 3★
    seasoned = compute(20, 20, 20, 95, 20, likes=10, years=6, certifications=2)
    assert seasoned.star_level == 5
    no_extras = compute(20, 20, 20, 95, 20)
    assert no_extras.score < seasoned.score
    assert compute(20, 20, 20, 95, 20, likes=5).score == pytest.approx(no_extras.score + 0.05)
    only_ratings = StarRule(rating=1, respond=0, on_site=0, likes=0, years=0, certifications=0)
    assert compute(20, 0, 0, 100, 20, rule=only_ratings).star_level == 5  # late but loved


def test_weights_must_add_up(tmp_path: Path) -> None:
    text = re.sub(r"  rating: 0\.5 ", "  rating: 0.7 ", Path(DEFAULT_POLICY).read_text(encoding="utf-8"))
    path = tmp_path / "policy.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=r"policy\.yaml:\d+: stars.*must add up to 1, got 1\.2"):
        load_policy(path)


async def test_a_like_moves_the_stars(conn: psycopg.AsyncConnection[Any], clock: ManualClock,
                                      policy: Policy) -> None:
    butler = await add_butler(conn, "陈师傅")
    await conn.execute("UPDATE butlers SET hired_on = %s WHERE id = %s", (date(2020, 1, 1), butler))
    await replace(conn, butler, [Certification(name="电梯安全管理员证"), Certification(name="电工证")])
    li = Actor("user", 41, "李女士", "resident")
    wo, _ = await submit_report(conn, policy, Report(community="c1", text="门禁坏了", reporter_user_id=41),
                                clock.now(), li)
    with pytest.raises(IllegalTransition):
        await like(conn, policy, wo["id"], li, clock.now())  # not resolved yet
    for action in ("accept", "arrive", "resolve"):
        clock.advance(timedelta(minutes=2))
        await repo.transition(conn, policy, wo["id"], action, Actor.butler(butler), clock.now())
    with pytest.raises(NotAllowed):
        await like(conn, policy, wo["id"], Actor("user", 42, "王", "resident"), clock.now())
    await rate(conn, policy, wo["id"], 5, "好", li, clock.now())
    cur = await conn.execute("SELECT score FROM butler_performance WHERE butler_id = %s", (butler,))
    before = (await cur.fetchone() or (0,))[0]
    assert await like(conn, policy, wo["id"], li, clock.now()) == butler
    with pytest.raises(InvalidRequest, match="already liked"):
        await like(conn, policy, wo["id"], li, clock.now())
    cur = await conn.execute("SELECT score, star_level FROM butler_performance WHERE butler_id = %s", (butler,))
    after, stars = await cur.fetchone() or (0, 0)
    assert after == pytest.approx(before + 0.1 / 10, abs=1e-4)  # one like of ten, weight 0.1
    cur = await conn.execute("SELECT star_level FROM butlers WHERE id = %s", (butler,))
    assert await cur.fetchone() == (stars,)
    trail = [t["action"] for t in await repo.trail(conn, wo["id"])]
    assert trail[-1] == "liked"
