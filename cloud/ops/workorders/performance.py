"""A butler's performance record and star level (1–5), from residents' ratings and SLA results.

Over the last ``WINDOW`` (90 days) of the butler's resolved/closed orders::

    rating   = (sum of stars + PRIOR_RATING * C) / (ratings + C)          Bayesian mean, C = 5
    respond  = (accepted in time + PRIOR_OK * C) / (orders + C)           share of orders accepted by respond_due
    on_site  = (on site in time  + PRIOR_OK * C) / (orders + C)           share on site by on_site_due
    score    = 0.6 * (rating - 1) / 4 + 0.2 * respond + 0.2 * on_site     0 … 1
    star     = 1 + min(4, floor(score * 5))                                <0.2 → 1★ … ≥0.8 → 5★

The priors (3 stars, 70 % on time; score 0.58) keep a new butler at 3★ until real results accumulate, so
one bad rating does not crush a newcomer and one good one does not crown them. Ratings weigh
most because the service model ties fees to residents' satisfaction (units rated below 90 % can
have their fee lowered); SLA results make sure speed counts too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from psycopg import AsyncConnection

WINDOW: Final = timedelta(days=90)
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


def compute(orders: int, respond_ok: int, on_site_ok: int, star_sum: int, rated: int) -> Performance:
    rating = (star_sum + PRIOR_RATING * C) / (rated + C)
    respond = (respond_ok + PRIOR_OK * C) / (orders + C)
    on_site = (on_site_ok + PRIOR_OK * C) / (orders + C)
    score = 0.6 * (rating - 1) / 4 + 0.2 * respond + 0.2 * on_site
    star = 1 + min(4, math.floor(score * 5))
    return Performance(
        orders=orders, rated=rated, rating_mean=star_sum / rated if rated else None,
        respond_ok_ratio=respond_ok / orders if orders else None,
        on_site_ok_ratio=on_site_ok / orders if orders else None, score=round(score, 4), star_level=star,
    )


async def recompute(conn: AsyncConnection[Any], butler_id: int, now: datetime) -> Performance:
    """Recompute and store the record and the butler's star level."""
    cur = await conn.execute(
        """SELECT count(*),
                  count(*) FILTER (WHERE accepted_at IS NOT NULL AND accepted_at <= respond_due),
                  count(*) FILTER (WHERE on_site_at IS NOT NULL AND on_site_at <= on_site_due)
           FROM work_orders WHERE assignee_id = %s AND state IN ('resolved', 'closed') AND created_at >= %s""",
        (butler_id, now - WINDOW),
    )
    orders, respond_ok, on_site_ok = await cur.fetchone() or (0, 0, 0)
    cur = await conn.execute(
        "SELECT coalesce(sum(stars), 0), count(*) FROM work_order_ratings WHERE butler_id = %s AND created_at >= %s",
        (butler_id, now - WINDOW),
    )
    star_sum, rated = await cur.fetchone() or (0, 0)
    perf = compute(int(orders), int(respond_ok), int(on_site_ok), int(star_sum), int(rated))
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
