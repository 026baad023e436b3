"""The report's read model (SQL here, typed rows out). Every query is bounded by the period's
[start, end) on the *event's* own timestamp — opened, accepted, on site, resolved, completed,
measured — so a past period's numbers do not change when the report is generated again later."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row, dict_row

from cloud.ops.reports.targets import Target


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
    acknowledged: int
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
                      count(acc)::int AS acknowledged,
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


async def energy_slots(conn: AsyncConnection[Any], community: str, start: datetime, end: datetime,
                       metric: str = "energy_total") -> list[dict[str, Any]]:
    """kWh per meter and local hour-of-week slot (Monday 00:00 = 0) over ``[start, end)``, with the
    number of measured hours in the slot — what both the tariff (local hour) and the baseline
    (weekday × hour) need, so ≤ 168 rows per meter leave the database instead of one per hour.

    An hour's kWh is the increase of the counter's hourly maximum over the previous hour's (an
    hour before ``start`` is read so the first hour has one); a counter that went backwards (meter
    replaced) counts 0 that hour; the first hour ever uses max − min. Summed as ``numeric``: exact,
    and the same whatever plan the database picks (a float sum's order is not guaranteed)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """SELECT d.code AS device, b.code AS building,
                      ((extract(isodow FROM t.bucket AT TIME ZONE c.timezone)::int - 1) * 24
                       + extract(hour FROM t.bucket AT TIME ZONE c.timezone)::int) AS slot,
                      sum(greatest(coalesce(t.max_value - t.prev, t.max_value - t.min_value), 0)::numeric) AS kwh,
                      count(*)::int AS hours
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
                GROUP BY 1, 2, 3 ORDER BY 1, 3""",
            {"c": community, "metric": metric, "start": start, "end": end})
        return await cur.fetchall()


async def community_zone(conn: AsyncConnection[Any], community: str) -> str | None:
    cur = await conn.execute("SELECT timezone FROM communities WHERE code = %s", (community,))
    row = await cur.fetchone()
    return str(row[0]) if row else None


async def meter_profiles(conn: AsyncConnection[Any], community: str, start: datetime) -> dict[str, list[float | None]]:
    """Per device code, the weekday × hour kWh profile of the newest meter baseline whose training
    window ended on or before ``start`` (see :mod:`cloud.ops.reports.energy` for why)."""
    cur = await conn.execute(
        """SELECT DISTINCT ON (b.device_id) d.code, b.params -> 'hour_of_week_kwh'
             FROM analytics_baselines b
             JOIN analytics_models m ON m.id = b.model_id AND m.kind = 'meter'
             JOIN devices d ON d.id = b.device_id
             JOIN communities c ON c.id = d.community_id AND c.code = %s
            WHERE b.window_end <= %s AND jsonb_typeof(b.params -> 'hour_of_week_kwh') = 'array'
            ORDER BY b.device_id, b.window_end DESC, m.version DESC""", (community, start))
    return {str(code): list(profile) for code, profile in await cur.fetchall()}


async def energy_targets(conn: AsyncConnection[Any], community: str, before: date) -> list[Target]:
    """Every target of ``community`` valid from a day before ``before`` (the resolution is
    :func:`cloud.ops.reports.targets.resolve`)."""
    async with conn.cursor(row_factory=class_row(Target)) as cur:
        await cur.execute(
            """SELECT community, building, period, kwh, valid_from FROM energy_targets
                WHERE community = %s AND valid_from < %s ORDER BY valid_from""", (community, before))
        return await cur.fetchall()


async def list_targets(conn: AsyncConnection[Any], community: str) -> list[Target]:
    async with conn.cursor(row_factory=class_row(Target)) as cur:
        await cur.execute(
            """SELECT community, building, period, kwh, valid_from FROM energy_targets WHERE community = %s
                ORDER BY building NULLS FIRST, period, valid_from""", (community,))
        return await cur.fetchall()


async def set_target(conn: AsyncConnection[Any], target: Target, now: datetime) -> None:
    """Insert or replace the target of (community, building, period, valid_from)."""
    await conn.execute(
        """INSERT INTO energy_targets (community, building, period, kwh, valid_from, created_at)
           VALUES (%s, %s, %s, %s, %s, %s)
           ON CONFLICT (community, building, period, valid_from) DO UPDATE
           SET kwh = EXCLUDED.kwh, created_at = EXCLUDED.created_at""",
        (target.community, target.building, target.period, target.kwh, target.valid_from, now))


async def community_codes(conn: AsyncConnection[Any], visible: list[str] | None) -> list[str]:
    """Codes of the registered communities (all when ``visible`` is None), sorted."""
    cur = await conn.execute("SELECT code FROM communities WHERE (%(all)s OR code = ANY(%(some)s)) ORDER BY code",
                             {"all": visible is None, "some": visible or []})
    return [str(r[0]) for r in await cur.fetchall()]


async def availability_rows(conn: AsyncConnection[Any], community: str, start: datetime,
                            end: datetime) -> list[dict[str, Any]]:
    """Per device kind: devices registered before ``end``, faults (device alarms raised or reopened
    in the period) and down hours — the time in the period under a *critical* alarm (a stopped
    lift, a failed pump), from the alarm trail's raised/reopened → cleared steps stamped before
    ``end`` (the trail is append-only, so a later flap cannot change a past period)."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """WITH kinds AS (
                 SELECT d.kind, count(*)::int AS devices FROM devices d JOIN communities c ON c.id = d.community_id
                  WHERE c.code = %(c)s AND d.created_at < %(end)s GROUP BY d.kind),
               ev AS (
                 SELECT a.device_kind AS kind, a.severity, t.action, t.at,
                        lead(t.at) OVER (PARTITION BY a.id ORDER BY t.at, t.id) AS next_at
                   FROM alarms a JOIN alarm_trail t ON t.alarm_id = a.id
                  WHERE a.community = %(c)s AND a.source <> 'system' AND a.device_kind IS NOT NULL
                    AND t.action IN ('raised', 'reopened', 'cleared') AND t.at < %(end)s),
               per AS (
                 SELECT kind,
                        count(*) FILTER (WHERE action <> 'cleared' AND at >= %(start)s)::int AS faults,
                        coalesce(sum(extract(epoch FROM least(coalesce(next_at, %(end)s), %(end)s)
                                                      - greatest(at, %(start)s)))
                                 FILTER (WHERE action <> 'cleared' AND severity = 'critical'
                                           AND coalesce(next_at, %(end)s) > %(start)s), 0) / 3600 AS down_hours
                   FROM ev GROUP BY kind)
               SELECT k.kind, k.devices, coalesce(p.faults, 0) AS faults,
                      round(coalesce(p.down_hours, 0)::numeric, 2)::float AS down_hours
                 FROM kinds k LEFT JOIN per p ON p.kind = k.kind ORDER BY k.kind""",
            {"c": community, "start": start, "end": end})
        return await cur.fetchall()


@dataclass(frozen=True, slots=True)
class Subscription:
    id: int
    community: str | None
    period: str
    emails: list[str]
    messengers: list[str]
    language: str
    active: bool
    last_period: date | None
    created_at: datetime


_SUBSCRIPTION = "id, community, period, emails, messengers, language, active, last_period, created_at"


async def add_subscription(conn: AsyncConnection[Any], community: str | None, period: str, emails: list[str],
                           messengers: list[str], language: str, now: datetime) -> Subscription:
    async with conn.cursor(row_factory=class_row(Subscription)) as cur:
        await cur.execute(
            f"""INSERT INTO report_subscriptions (community, period, emails, messengers, language, created_at)
                VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_SUBSCRIPTION}""",
            (community, period, emails, messengers, language, now))
        row = await cur.fetchone()
    assert row is not None
    return row


async def subscriptions(conn: AsyncConnection[Any], visible: list[str] | None) -> list[Subscription]:
    """Subscriptions of the ``visible`` communities (None: all, company ones included)."""
    async with conn.cursor(row_factory=class_row(Subscription)) as cur:
        await cur.execute(
            f"""SELECT {_SUBSCRIPTION} FROM report_subscriptions
                 WHERE %(all)s OR community = ANY(%(some)s) ORDER BY id""",
            {"all": visible is None, "some": visible or []})
        return await cur.fetchall()


async def remove_subscription(conn: AsyncConnection[Any], sub_id: int, visible: list[str] | None) -> bool:
    """Deactivate (kept with its ``last_period``, so re-enabling never resends); False if not visible."""
    cur = await conn.execute(
        "UPDATE report_subscriptions SET active = false WHERE id = %(id)s AND (%(all)s OR community = ANY(%(some)s))",
        {"id": sub_id, "all": visible is None, "some": visible or []})
    return cur.rowcount > 0


async def last_sent(conn: AsyncConnection[Any], sub_ids: list[int]) -> dict[int, datetime]:
    """When each subscription's report last reached a recipient: the newest ``sent_at`` of its
    notifications (the scheduler writes the subscription id into their payload; migration 660)."""
    cur = await conn.execute(
        """SELECT payload ->> 'subscription', max(sent_at) FROM notifications
            WHERE event = 'manager_report' AND payload ->> 'subscription' = ANY(%s) AND sent_at IS NOT NULL
            GROUP BY 1""", ([str(i) for i in sub_ids],))
    return {int(key): at for key, at in await cur.fetchall()}


async def active_subscription_ids(conn: AsyncConnection[Any]) -> list[int]:
    cur = await conn.execute("SELECT id FROM report_subscriptions WHERE active ORDER BY id")
    return [int(r[0]) for r in await cur.fetchall()]


async def lock_subscription(conn: AsyncConnection[Any], sub_id: int) -> Subscription | None:
    """The subscription, locked for this transaction; None if gone or another sender holds it."""
    async with conn.cursor(row_factory=class_row(Subscription)) as cur:
        await cur.execute(f"SELECT {_SUBSCRIPTION} FROM report_subscriptions WHERE id = %s AND active "
                          "FOR UPDATE SKIP LOCKED", (sub_id,))
        return await cur.fetchone()


async def mark_enqueued(conn: AsyncConnection[Any], sub_id: int, first: date) -> None:
    await conn.execute("UPDATE report_subscriptions SET last_period = %s WHERE id = %s", (first, sub_id))


async def community_zones(conn: AsyncConnection[Any], community: str | None) -> list[str]:
    """The time zone of ``community``, or of every community (None)."""
    cur = await conn.execute("SELECT DISTINCT timezone FROM communities WHERE %(all)s OR code = %(c)s",
                             {"all": community is None, "c": community})
    return [str(r[0]) for r in await cur.fetchall()]


async def complaint_rows(conn: AsyncConnection[Any], community: str, start: datetime,
                         end: datetime) -> list[dict[str, Any]]:
    """Complaints (投诉) filed in the period, per grade, judged with what happened before ``end``:
    handled and closed, and how many of each met the grade's commitment (a commitment whose
    deadline is after ``end`` and not yet met is not judged); mean days from filing to closing."""
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute(
            """WITH x AS (
                 SELECT grade, created_at, handle_due, close_due,
                        CASE WHEN handled_at < %(end)s THEN handled_at END AS handled,
                        CASE WHEN closed_at < %(end)s THEN closed_at END AS closed
                   FROM complaints WHERE community = %(c)s AND created_at >= %(start)s AND created_at < %(end)s)
               SELECT grade, count(*)::int AS received, count(handled)::int AS handled,
                      count(*) FILTER (WHERE handled <= handle_due)::int AS handled_in_time,
                      count(*) FILTER (WHERE handled IS NOT NULL OR handle_due < %(end)s)::int AS handle_judged,
                      count(closed)::int AS closed,
                      count(*) FILTER (WHERE closed <= close_due)::int AS closed_in_time,
                      count(*) FILTER (WHERE closed IS NOT NULL OR close_due < %(end)s)::int AS close_judged,
                      round((avg(extract(epoch FROM closed - created_at)) / 86400)::numeric, 1)::float AS close_days
                 FROM x GROUP BY grade ORDER BY grade""", {"c": community, "start": start, "end": end})
        return await cur.fetchall()
