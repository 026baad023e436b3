"""The report's read model (SQL here, typed rows out). Every query is bounded by the period's
[start, end) on the *event's* own timestamp — opened, accepted, on site, resolved, completed,
measured — so a past period's numbers do not change when the report is generated again later."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row


@dataclass(frozen=True, slots=True)
class OrderStats:
    opened: int
    resolved: int
    respond_ok: int
    respond_judged: int
    on_site_ok: int
    on_site_judged: int
    resolve_ok: int
    resolve_judged: int
    mtta_min: float | None
    mttr_min: float | None


async def order_counts(conn: AsyncConnection[Any], community: str, start: datetime,
                       end: datetime) -> list[dict[str, Any]]:
    """Orders opened in the period by origin and priority."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT origin, priority, count(*) AS opened FROM work_orders
                WHERE community = %s AND created_at >= %s AND created_at < %s
                GROUP BY origin, priority ORDER BY origin, priority""", (community, start, end))
        return await cur.fetchall()


async def order_stats(conn: AsyncConnection[Any], community: str, start: datetime, end: datetime) -> OrderStats:
    """SLA and MTTA/MTTR of the orders opened in the period, judged with what happened before ``end``
    (a clock whose deadline is after ``end`` and not yet met is not judged)."""
    async with conn.cursor(row_factory=class_row(OrderStats)) as cur:
        await cur.execute(
            """WITH o AS (
                 SELECT created_at, respond_due, on_site_due, resolve_due, state,
                        CASE WHEN accepted_at < %(end)s THEN accepted_at END AS acc,
                        CASE WHEN on_site_at < %(end)s THEN on_site_at END AS site,
                        CASE WHEN resolved_at < %(end)s THEN resolved_at END AS res
                   FROM work_orders WHERE community = %(c)s AND created_at >= %(start)s AND created_at < %(end)s)
               SELECT count(*)::int AS opened,
                      count(res)::int AS resolved,
                      count(*) FILTER (WHERE acc <= respond_due)::int AS respond_ok,
                      count(*) FILTER (WHERE acc IS NOT NULL OR respond_due < %(end)s)::int AS respond_judged,
                      count(*) FILTER (WHERE site <= on_site_due)::int AS on_site_ok,
                      count(*) FILTER (WHERE site IS NOT NULL OR on_site_due < %(end)s)::int AS on_site_judged,
                      count(*) FILTER (WHERE res <= resolve_due)::int AS resolve_ok,
                      count(*) FILTER (WHERE res IS NOT NULL OR resolve_due < %(end)s)::int AS resolve_judged,
                      round((avg(extract(epoch FROM acc - created_at)) / 60)::numeric, 1)::float AS mtta_min,
                      round((avg(extract(epoch FROM res - created_at)) / 60)::numeric, 1)::float AS mttr_min
                 FROM o""", {"c": community, "start": start, "end": end})
        row = await cur.fetchone()
    assert row is not None
    return row


async def maintenance_rows(conn: AsyncConnection[Any], community: str, start: datetime,
                           end: datetime) -> list[dict[str, Any]]:
    """Planned orders due in the period (by due instant), with how each stood at ``end``."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT template, count(*)::int AS due,
                      count(*) FILTER (WHERE completed_at < %(end)s AND submitted_at <= due_at)::int AS on_time,
                      count(*) FILTER (WHERE completed_at < %(end)s AND submitted_at > due_at)::int AS late,
                      count(*) FILTER (WHERE (completed_at IS NULL OR completed_at >= %(end)s)
                                         AND state <> 'cancelled')::int AS not_done
                 FROM maintenance_orders
                WHERE community = %(c)s AND due_at > %(start)s AND due_at <= %(end)s
                GROUP BY template ORDER BY template""", {"c": community, "start": start, "end": end})
        return await cur.fetchall()


async def hourly_energy(conn: AsyncConnection[Any], community: str, start: datetime, end: datetime,
                        metric: str = "energy_total") -> list[dict[str, Any]]:
    """kWh per meter and hour from the hourly rollup: the increase of the counter's hourly maximum
    over the previous hour's (an hour before ``start`` is read so the first hour has one); a counter
    that went backwards (meter replaced) counts 0 that hour; the first hour ever uses max − min."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT d.code AS device, b.code AS building, t.bucket,
                      greatest(coalesce(t.max_value - t.prev, t.max_value - t.min_value), 0) AS kwh
                 FROM devices d
                 JOIN communities c ON c.id = d.community_id
                 JOIN metrics m ON m.name = %(metric)s
                 LEFT JOIN buildings b ON b.id = d.building_id
                 -- per device, so the rollup's primary key (device, metric, bucket) drives the scan
                 CROSS JOIN LATERAL (
                   SELECT x.bucket, x.max_value, x.min_value,
                          lag(x.max_value) OVER (ORDER BY x.bucket) AS prev
                     FROM telemetry_1h x
                    WHERE x.device_id = d.id AND x.metric_id = m.id
                      AND x.bucket >= %(start)s - interval '1 hour' AND x.bucket < %(end)s) t
                WHERE c.code = %(c)s AND t.bucket >= %(start)s
                ORDER BY d.code, t.bucket""",
            {"c": community, "metric": metric, "start": start, "end": end})
        return await cur.fetchall()


async def community_zone(conn: AsyncConnection[Any], community: str) -> str | None:
    cur = await conn.execute("SELECT timezone FROM communities WHERE code = %s", (community,))
    row = await cur.fetchone()
    return str(row[0]) if row else None
