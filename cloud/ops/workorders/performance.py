"""A butler's performance record and star level (1–5), from residents' ratings and likes, SLA
results, years of service and certifications, weighted by the policy's ``stars`` rule.

Over the rule's ``window`` (90 days) of the butler's resolved/closed orders::

    rating   = (sum of stars + PRIOR_RATING * C) / (ratings + C)          Bayesian mean, C = 5
    respond  = (accepted in time + PRIOR_OK * C) / (orders + C)           share of orders accepted by respond_due
    on_site  = (on site in time  + PRIOR_OK * C) / (orders + C)           share on site by on_site_due
    likes    = min(1, likes in the window / likes_full)
    years    = min(1, years since hired_on / years_full)
    certs    = min(1, certifications valid today / certifications_full)     (expired ones do not count)
    score    = w.rating * (rating - 1) / 4 + w.respond * respond + w.on_site * on_site
               + w.likes * likes + w.years * years + w.certifications * certs            0 … 1
    star     = 1 + min(4, floor(score * 5))                                <0.2 → 1★ … ≥0.8 → 5★

Default weights 0.5 / 0.15 / 0.15 / 0.1 / 0.05 / 0.05 (``cloud/ops/model/policy.yaml``). The priors
(3 stars, 70 % on time) keep a new butler at 3★ until real results accumulate, so one bad rating
does not crush a newcomer and one good one does not crown them. Ratings weigh most because the
service model ties fees to residents' satisfaction (units rated below 90 % can have their fee
lowered); SLA results make sure speed counts too; likes, seniority and certificates are the
seeds' other signs of a trusted butler, weighted lightly because they say less about this
quarter's service.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from psycopg import AsyncConnection

from cloud.ops.model.policy import StarRule
from cloud.ops.workorders.qualifications import count_current, years_of_service

C: Final = 5.0
PRIOR_RATING: Final = 3.0
PRIOR_OK: Final = 0.7


@dataclass(frozen=True, slots=True)
class Performance:
    orders: int
    rated: int
    rating_mean: float | None
    respond_ok_ratio: float | None
    on_site_ok_ratio: float | None
    score: float
    star_level: int


def compute(orders: int, respond_ok: int, on_site_ok: int, star_sum: int, rated: int, *, likes: int = 0,
            years: float = 0.0, certifications: int = 0, rule: StarRule | None = None) -> Performance:
    w = rule or StarRule()
    rating = (star_sum + PRIOR_RATING * C) / (rated + C)
    respond = (respond_ok + PRIOR_OK * C) / (orders + C)
    on_site = (on_site_ok + PRIOR_OK * C) / (orders + C)
    score = (w.rating * (rating - 1) / 4 + w.respond * respond + w.on_site * on_site
             + w.likes * min(1.0, likes / w.likes_full) + w.years * min(1.0, max(0.0, years) / w.years_full)
             + w.certifications * min(1.0, certifications / w.certifications_full))
    star = 1 + min(4, math.floor(score * 5))
    return Performance(
        orders=orders, rated=rated, rating_mean=star_sum / rated if rated else None,
        respond_ok_ratio=respond_ok / orders if orders else None,
        on_site_ok_ratio=on_site_ok / orders if orders else None, score=round(score, 4), star_level=star,
    )


async def recompute(conn: AsyncConnection[Any], butler_id: int, now: datetime,
                    rule: StarRule | None = None) -> Performance:
    """Recompute and store the record and the butler's star level (on every rating and like)."""
    rule = rule or StarRule()
    cur = await conn.execute(
        """SELECT count(*),
                  count(*) FILTER (WHERE accepted_at IS NOT NULL AND accepted_at <= respond_due),
                  count(*) FILTER (WHERE on_site_at IS NOT NULL AND on_site_at <= on_site_due)
           FROM work_orders WHERE assignee_id = %s AND state IN ('resolved', 'closed') AND created_at >= %s""",
        (butler_id, now - rule.window),
    )
    orders, respond_ok, on_site_ok = await cur.fetchone() or (0, 0, 0)
    cur = await conn.execute(
        "SELECT coalesce(sum(stars), 0), count(*) FROM work_order_ratings WHERE butler_id = %s AND created_at >= %s",
        (butler_id, now - rule.window),
    )
    star_sum, rated = await cur.fetchone() or (0, 0)
    cur = await conn.execute(
        """SELECT (SELECT count(*) FROM butler_likes WHERE butler_id = b.id AND created_at >= %s), b.hired_on
             FROM butlers b WHERE b.id = %s""",
        (now - rule.window, butler_id))
    row = await cur.fetchone()
    likes, hired_on = row or (0, None)
    certifications = await count_current(conn, butler_id, now) if row is not None else 0
    years = years_of_service(hired_on, now.date())
    perf = compute(int(orders), int(respond_ok), int(on_site_ok), int(star_sum), int(rated), likes=int(likes),
                   years=years, certifications=int(certifications or 0), rule=rule)
    await conn.execute(
        """INSERT INTO butler_performance (butler_id, orders, rated, rating_mean, respond_ok_ratio, on_site_ok_ratio,
               score, star_level, computed_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
           ON CONFLICT (butler_id) DO UPDATE SET orders = excluded.orders, rated = excluded.rated,
               rating_mean = excluded.rating_mean, respond_ok_ratio = excluded.respond_ok_ratio,
               on_site_ok_ratio = excluded.on_site_ok_ratio, score = excluded.score,
               star_level = excluded.star_level, computed_at = excluded.computed_at""",
        (butler_id, perf.orders, perf.rated, perf.rating_mean, perf.respond_ok_ratio, perf.on_site_ok_ratio,
         perf.score, perf.star_level, now),
    )
    await conn.execute("UPDATE butlers SET star_level = %s WHERE id = %s", (perf.star_level, butler_id))
    return perf
