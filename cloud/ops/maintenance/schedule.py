"""When is a device's next planned maintenance due — pure calendar and health arithmetic.

Dates are *local* dates of the community (its ``timezone``): a lift maintained on the 31st of
January at 23:30 in Shanghai was maintained on the 31st, whatever UTC says. A day-based interval
adds days; a month-based one adds calendar months and keeps the day of month, clamped to the
month's last day (31 Jan + 1 month = 28 Feb, or 29 in a leap year) — what a maintenance contract
means by "monthly".

Condition-based intervals (按需维保): when a plan opts in and the device has a health record
(:mod:`cloud.analytics.health`), the interval is

* *run-based* — if the template names a figure (lift trips, pump run hours) and a quota per
  interval, the days the device needs, at its recent rate, to use up the quota;
* scaled by *condition* — the health score (≥ 90 stretches by 25 %, 60–74 shortens by 20 %,
  below 60 by 40 %), each fault in the record's window and each open analytics detection
  shortens by another 10 % (at most by half);

the shorter of the two, then clamped to the template's bounds. The decision carries its reason
in Chinese and English, so the plan page says why the lift is due on the 12th and not the 15th.
Without a health record the plan keeps its fixed interval (and says so).
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cloud.ops.maintenance.templates import Bounds, Interval, Template


def add_months(day: date, months: int) -> date:
    month0 = day.month - 1 + months
    year, month = day.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def add_interval(day: date, interval: Interval) -> date:
    if interval.days is not None:
        return day + timedelta(days=interval.days)
    return add_months(day, interval.months or 0)


def local_date(when: datetime, zone: ZoneInfo) -> date:
    return when.astimezone(zone).date()


def day_start(day: date, zone: ZoneInfo) -> datetime:
    """Local midnight starting ``day``, in UTC."""
    return datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC)


def day_end(day: date, zone: ZoneInfo) -> datetime:
    """Local midnight ending ``day`` (the due instant of something due that day), in UTC."""
    return day_start(day + timedelta(days=1), zone)


@dataclass(frozen=True, slots=True)
class Health:
    """What the scheduler reads of a device's health record (``device_health`` and open detections)."""

    score: int
    window_days: float
    figures: dict[str, Any] = field(default_factory=dict)
    open_detections: int = 0

    @property
    def faults(self) -> int:
        faults = self.figures.get("faults") or {}
        return int(sum(v for v in faults.values() if isinstance(v, int | float))) if isinstance(faults, dict) else 0


@dataclass(frozen=True, slots=True)
class Decision:
    due_on: date
    interval_days: int
    reason: str


def _condition_factor(health: Health) -> tuple[float, list[str]]:
    why: list[str] = []
    if health.score >= 90:
        factor = 1.25
        why.append(f"健康分 {health.score}，延长 25% / health score {health.score}: +25%")
    elif health.score >= 75:
        factor = 1.0
    elif health.score >= 60:
        factor = 0.8
        why.append(f"健康分 {health.score}，缩短 20% / health score {health.score}: -20%")
    else:
        factor = 0.6
        why.append(f"健康分 {health.score}，缩短 40% / health score {health.score}: -40%")
    trouble = health.faults + health.open_detections
    if trouble:
        cut = min(0.5, 0.1 * trouble)
        factor *= 1.0 - cut
        why.append(f"故障 {health.faults} 次、未关闭异常 {health.open_detections} 项，再缩短 {cut:.0%} / "
                   f"{health.faults} faults, {health.open_detections} open detections: -{cut:.0%}")
    return factor, why


def condition_interval(template: Template, base_days: int, health: Health) -> tuple[int, str]:
    """The condition- (and run-) based interval in days, within the template's bounds, and why."""
    factor, why = _condition_factor(health)
    days = base_days * factor
    run = template.run_based
    if run is not None and health.window_days > 0:
        used = health.figures.get(run.figure)
        if isinstance(used, int | float) and used > 0:
            run_days = run.per_interval / (used / health.window_days)
            if run_days >= days:  # the quota lasts longer than the condition allows: not the reason
                return clamp(template.bounds, days, why)
            why.append(f"按运行量：{run.figure} 每天 {used / health.window_days:.0f}，{run.per_interval:g} 需 "
                       f"{run_days:.1f} 天 / run-based: {run.figure} {used / health.window_days:.0f}/day, "
                       f"{run.per_interval:g} in {run_days:.1f} days")
            days = min(days, run_days)
    return clamp(template.bounds, days, why)


def clamp(bounds: Bounds, days: float, why: list[str]) -> tuple[int, str]:
    whole = round(days)
    if whole < bounds.min_days:
        why.append(f"不短于下限 {bounds.min_days} 天 / not below the bound of {bounds.min_days} days")
        whole = bounds.min_days
    elif whole > bounds.max_days:
        why.append(f"不超过上限 {bounds.max_days} 天 / not above the bound of {bounds.max_days} days")
        whole = bounds.max_days
    if not why:
        why.append("设备状况正常，按标准周期 / condition normal: standard interval")
    return whole, "按需维保：" + "；".join(why)


def next_due(template: Template, *, last_done: date | None, starts_on: date, plan_days: int | None,
             condition_based: bool, health: Health | None) -> Decision:
    """The next due date of a plan on one device (see the module docstring)."""
    nominal = plan_days if plan_days is not None else template.interval.nominal_days()
    if last_done is None:
        return Decision(starts_on, nominal, "首次维保：计划起始日 / first maintenance: the plan's start date")
    if condition_based and health is not None:
        days, reason = condition_interval(template, nominal, health)
        return Decision(last_done + timedelta(days=days), days, reason)
    suffix = "" if not condition_based else "（无健康档案）/ (no health record)"
    if plan_days is not None:
        return Decision(last_done + timedelta(days=plan_days), plan_days,
                        f"固定周期 {plan_days} 天{suffix} / fixed interval of {plan_days} days")
    due = add_interval(last_done, template.interval)
    spelled = (f"{template.interval.days} 天 / {template.interval.days} days" if template.interval.days
               else f"{template.interval.months} 个月 / {template.interval.months} months")
    return Decision(due, (due - last_done).days, f"固定周期{suffix}：{spelled}")


def creation_instant(due_on: date, lead_days: int, zone: ZoneInfo) -> datetime:
    """When the scheduler opens the planned order: local midnight ``lead_days`` before the due date."""
    return day_start(due_on - timedelta(days=lead_days), zone)
