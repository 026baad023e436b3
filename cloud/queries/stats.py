"""Service performance for managers: SLA compliance, mean time to respond and to repair, per
butler and per community, and the distribution of residents' ratings.

Definitions (the same as the WORKORDERS part's SLA clocks, on its ``work_orders`` table):

* *responded in time* — accepted at or before ``respond_due``; an order never accepted counts as
  late once its deadline has passed, and is not counted before that;
* *on site in time* — ``on_site_at`` at or before ``on_site_due``, same rule;
* *time to respond* — ``accepted_at - created_at``; *time to repair* — ``resolved_at - created_at``.

Orders are those created in the period (default the last 30 days).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import dict_row

from cloud.auth.users import User, scope_params


@dataclass(slots=True)
class PerfRow:
    key: str
    label: str
    community: str
    orders: int
    respond_ok: float | None
    on_site_ok: float | None
    respond_s: float | None
    repair_s: float | None
    rating: float | None
    rated: int


@dataclass(slots=True)
class PerformanceReport:
    """The service-level report of a period (the manager page and ``/api/v1/dashboard/performance``).
    Not a butler's star record (:class:`cloud.ops.workorders.performance.Performance`), which is the
    domain's running score of one butler."""

    days: int
    total: PerfRow
    by_butler: list[PerfRow]
    by_community: list[PerfRow]
    ratings: dict[int, int]


_AGG = """
count(*) AS orders,
avg(CASE WHEN w.accepted_at IS NOT NULL THEN (w.accepted_at <= w.respond_due)::int
         WHEN w.respond_due < %(now)s THEN 0 END) AS respond_ok,
avg(CASE WHEN w.on_site_at IS NOT NULL THEN (w.on_site_at <= w.on_site_due)::int
         WHEN w.on_site_due < %(now)s AND w.state <> 'cancelled' THEN 0 END) AS on_site_ok,
avg(extract(epoch FROM w.accepted_at - w.created_at)) AS respond_s,
avg(extract(epoch FROM w.resolved_at - w.created_at)) AS repair_s,
avg(r.stars) AS rating, count(r.stars) AS rated
"""

_FROM = """
FROM work_orders w
LEFT JOIN work_order_ratings r ON r.work_order_id = w.id
LEFT JOIN butlers b ON b.id = w.assignee_id
WHERE w.created_at >= %(since)s AND (%(all)s OR w.community = ANY(%(communities)s))
  AND (%(community)s::text IS NULL OR w.community = %(community)s)
"""


def _perf(r: dict[str, Any], key: str, label: str, community: str) -> PerfRow:
    return PerfRow(key=key, label=label, community=community, orders=r["orders"], respond_ok=r["respond_ok"],
                   on_site_ok=r["on_site_ok"], respond_s=r["respond_s"], repair_s=r["repair_s"],
                   rating=float(r["rating"]) if r["rating"] is not None else None, rated=r["rated"])


async def load_performance(conn: AsyncConnection[Any], user: User, *, days: int = 30,
                           community: str | None = None, now: dt.datetime) -> PerformanceReport:
    params = {**scope_params(user), "since": now - dt.timedelta(days=days), "now": now, "community": community}
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(f"SELECT {_AGG} {_FROM}", params)
        total_row = await cur.fetchone()
        assert total_row is not None
        await cur.execute(
            f"SELECT w.assignee_id, coalesce(b.name, '-') AS name, w.community, {_AGG} {_FROM}"
            " GROUP BY w.assignee_id, b.name, w.community ORDER BY w.community, name", params)
        by_butler = [_perf(r, str(r["assignee_id"]), r["name"], r["community"]) for r in await cur.fetchall()]
        await cur.execute(f"SELECT w.community, {_AGG} {_FROM} GROUP BY w.community ORDER BY w.community", params)
        by_community = [_perf(r, r["community"], r["community"], r["community"]) for r in await cur.fetchall()]
        await cur.execute(f"SELECT r.stars, count(*) AS n {_FROM} AND r.stars IS NOT NULL GROUP BY r.stars", params)
        ratings = dict.fromkeys(range(1, 6), 0)
        for r in await cur.fetchall():
            ratings[int(r["stars"])] = int(r["n"])
    return PerformanceReport(days=days, total=_perf(total_row, "all", "all", community or ""), by_butler=by_butler,
                       by_community=by_community, ratings=ratings)
