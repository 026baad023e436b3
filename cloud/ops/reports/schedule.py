"""Scheduled delivery of the manager reports: a component of ``guanjia cloud serve`` that, on the
injected clock, sends each subscription's report once its period has closed in local time — by
email with the PDF attached, and to messengers as a short summary with a link to the page.

Idempotent and restart-proof without any state in memory: per subscription, one transaction
locks the row (``FOR UPDATE SKIP LOCKED``, so two services split the work and never both send),
builds the report of the last closed period, queues one outbox notification per recipient whose
``dedup_key`` is (subscription, period, channel, recipient), and moves ``last_period`` on — all or
nothing. A crash before the commit sends nothing and the next pass redoes it; after the commit the
notification sender (:class:`cloud.ops.delivery.sender.NotificationSender`) owns delivery, with
its retries and its ``notification_failed`` alarm. A subscription that cannot be built (no CJK font
for the PDF) is logged and retried on the next pass; the others still go.

Which period: the one that ended last before ``now`` in the community's time zone (for a company
subscription, in *every* community's zone — a company month closes at the last midnight). Only
the latest closed period is sent: after a long outage a daily subscription gets yesterday's report,
not a burst of old ones (they stay on the page). A period that ended before the subscription was
made is not sent.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, fields
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import psycopg
from psycopg import AsyncConnection

from cloud.ops.model.errors import WorkOrderError
from cloud.ops.notify.outbox import notify_report
from cloud.ops.reports import pdf, repo
from cloud.ops.reports.company import build_company
from cloud.ops.reports.manager import Period, bounds, build
from cloud.ops.reports.tariffs import Tariff
from guanjia.core.clock import Clock

log = logging.getLogger(__name__)

PERIOD_TEXT = {"zh": {"day": "日报", "week": "周报", "month": "月报"},
               "en": {"day": "daily report", "week": "weekly report", "month": "monthly report"}}


def last_closed(period: Period, now: datetime, zones: list[str]) -> tuple[date, datetime]:
    """First day and end instant of the latest period of kind ``period`` closed in every zone."""
    found: list[tuple[date, datetime]] = []
    for name in zones:
        zone = ZoneInfo(name)
        current = bounds(period, now.astimezone(zone).date(), zone)[0]
        first, _after, _start, end = bounds(period, current - timedelta(days=1), zone)
        found.append((first, end))
    return min(found)


@dataclass(frozen=True, slots=True)
class SubscriptionView(repo.Subscription):
    """A subscription as the API lists it and the page shows it: the stored row, plus the next
    period it will send and the instant that period closes (it is queued on the first pass after),
    in ``timezone`` — the community's (a company subscription: the zone where the period closes last),
    and when its report last reached a recipient (``last_period`` is the period it was).

    Derived here, beside :meth:`ReportDelivery._one`, from the same :func:`last_closed`, so the page
    cannot promise a period the sender would skip. None for a stopped subscription."""

    next_period: date | None
    next_send: datetime | None
    timezone: str | None
    last_sent: datetime | None


def upcoming(sub: repo.Subscription, now: datetime, zones: list[str]) -> tuple[date, datetime, str] | None:
    """(first day, closing instant, zone) of the next period ``sub`` sends: the latest closed one if
    the sender has not queued it yet (it goes on the next pass), else the one after it."""
    if not sub.active or not zones:
        return None
    period: Period = sub.period  # type: ignore[assignment]  # CHECK constraint: day | week | month
    first, end = last_closed(period, now, zones)
    if end > sub.created_at and (sub.last_period is None or first > sub.last_period):
        return first, end, max(zones, key=lambda z: bounds(period, first, ZoneInfo(z))[3])
    after = bounds(period, first, ZoneInfo(zones[0]))[1]
    closes = [(bounds(period, after, ZoneInfo(z))[3], z) for z in zones]
    end, zone = max(closes)
    return after, end, zone


async def subscription_views(conn: AsyncConnection[Any], visible: list[str] | None,
                             now: datetime) -> list[SubscriptionView]:
    """:func:`repo.subscriptions` with each one's next period (see :func:`upcoming`)."""
    zones: dict[str | None, list[str]] = {}
    views = []
    subs = await repo.subscriptions(conn, visible)
    sent = await repo.last_sent(conn, [sub.id for sub in subs])
    for sub in subs:
        if sub.community not in zones:
            zones[sub.community] = await repo.community_zones(conn, sub.community)
        nxt = upcoming(sub, now, zones[sub.community])
        stored: dict[str, Any] = {f.name: getattr(sub, f.name) for f in fields(sub)}
        views.append(SubscriptionView(**stored, next_period=nxt[0] if nxt else None,
                                      next_send=nxt[1] if nxt else None,
                                      timezone=nxt[2] if nxt else next(iter(zones[sub.community]), None),
                                      last_sent=sent.get(sub.id)))
    return views


def page_link(public_url: str | None, community: str | None, period: str, first: date) -> str | None:
    if not public_url:
        return None
    query = urlencode({**({"community": community} if community else {}), "period": period,
                       "start": first.isoformat()})
    return f"{public_url.rstrip('/')}/reports{'' if community else '/company'}?{query}"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def summary(report: dict[str, Any], language: str, link: str | None) -> tuple[str, str]:
    """Subject and text of the report's message, in ``language`` (zh or en)."""
    who = report["community"] or ("全公司" if language == "zh" else "company")
    sla, energy = report["sla"], report["energy_total"]
    due = sum(int(m["due"]) for m in report["maintenance"])
    on_time = sum(int(m["on_time"]) for m in report["maintenance"])
    expected = sum(int(i["expected"]) for i in report["inspections"])
    covered = sum(int(i["covered"]) for i in report["inspections"])
    span = f"{report['start']} – {report['end']}"
    saved = energy["savings_cost"] or "—"
    target = energy["target_deviation_pct"]
    if language == "en":
        subject = f"{who} {PERIOD_TEXT['en'][report['period']]} {span}"
        lines = [subject,
                 f"Work orders: {sla['opened']} opened, {sla['resolved']} resolved; resolved within SLA "
                 f"{_pct(sla['resolve_ratio'])}; MTTA {sla['mtta_min'] or '—'} min, MTTR {sla['mttr_min'] or '—'} min",
                 f"Planned maintenance: {on_time}/{due} on time; inspections covered {covered}/{expected}",
                 f"Energy: {energy['kwh']} kWh, {energy['cost']} CNY; saved {saved} CNY against the baseline; "
                 f"target {'—' if target is None else target + '%'}"]
        if link:
            lines.append(f"Report: {link}")
    else:
        subject = f"{who} {PERIOD_TEXT['zh'][report['period']]} {span}"
        lines = [subject,
                 f"工单：新建 {sla['opened']}，解决 {sla['resolved']}；按时解决率 {_pct(sla['resolve_ratio'])}；"
                 f"平均响应 {sla['mtta_min'] or '—'} 分钟，平均解决 {sla['mttr_min'] or '—'} 分钟",
                 f"计划维保：按时 {on_time}/{due}；巡检覆盖 {covered}/{expected}",
                 f"能耗：{energy['kwh']} kWh，电费 {energy['cost']} 元；较基线节省 {saved} 元；"
                 f"较指标 {'—' if target is None else target + '%'}"]
        if link:
            lines.append(f"查看报告：{link}")
    return subject, "\n".join(lines)


@dataclass(slots=True)
class ReportDelivery:
    """Component and a directly callable :meth:`run_once` for tests."""

    tariff: Tariff
    clock: Clock
    public_url: str | None = None
    interval: float = 60.0
    name: str = "report-delivery"
    enqueued: int = 0
    errors: int = 0

    async def run_once(self, conn: AsyncConnection[Any]) -> list[tuple[int, date]]:
        """Queue every subscription's latest closed period not yet queued; returns (subscription, first day)."""
        done = []
        for sub_id in await repo.active_subscription_ids(conn):
            try:
                first = await self._one(conn, sub_id)
            except WorkOrderError as exc:  # no CJK font for the PDF, a community gone: the others still go
                self.errors += 1
                log.warning("report subscription %s: %s", sub_id, exc)
                continue
            if first is not None:
                done.append((sub_id, first))
                self.enqueued += 1
        return done

    async def _one(self, conn: AsyncConnection[Any], sub_id: int) -> date | None:
        async with conn.transaction():
            sub = await repo.lock_subscription(conn, sub_id)
            if sub is None:
                return None
            now = self.clock.now()
            zones = await repo.community_zones(conn, sub.community)
            if not zones:
                return None
            period: Period = sub.period  # type: ignore[assignment]  # CHECK constraint: day | week | month
            first, end = last_closed(period, now, zones)
            if end <= sub.created_at or (sub.last_period is not None and first <= sub.last_period):
                return None
            await self._enqueue(conn, sub, period, first, now)
            await repo.mark_enqueued(conn, sub.id, first)
            return first

    async def _enqueue(self, conn: AsyncConnection[Any], sub: repo.Subscription, period: Period, first: date,
                       now: datetime) -> None:
        if sub.community is None:
            report = await build_company(conn, None, period, first, self.tariff, now)
        else:
            report = await build(conn, sub.community, period, first, self.tariff, now)
        subject, text = summary(report, sub.language, page_link(self.public_url, sub.community, period, first))
        payload = {"subscription": sub.id, "community": sub.community, "period": period, "start": first.isoformat()}
        key = f"report:{sub.id}:{first.isoformat()}"
        if sub.emails:
            document = pdf.render(report)
            filename = f"{sub.community or 'company'}-{period}-{first.isoformat()}.pdf"
            for address in sub.emails:
                await notify_report(conn, channel="email", target=address, community=sub.community, subject=subject,
                                    body=text, payload=payload, dedup_key=f"{key}:email:{address}", now=now,
                                    attachments=((filename, "application/pdf", document),))
        for url in sub.messengers:
            await notify_report(conn, channel="messenger", target=url, community=sub.community, subject=subject,
                                body=text, payload=payload, dedup_key=f"{key}:m:{url}", now=now)

    async def run(self, ctx: Any) -> None:
        ctx.metrics.gauge("guanjia_reports_enqueued", "manager reports queued for delivery by this process",
                          lambda: float(self.enqueued))
        while True:
            try:
                async with ctx.pool.connection() as conn:
                    await self.run_once(conn)
            except (psycopg.Error, TimeoutError) as exc:
                self.errors += 1
                log.warning("report delivery pass failed: %s", exc)
            await asyncio.sleep(self.interval)
