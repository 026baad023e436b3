"""Templates and the pure scheduling arithmetic of planned maintenance (no database)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from cloud.ops.maintenance.schedule import Health, add_months, next_due
from cloud.ops.maintenance.templates import load_catalog, shipped
from guanjia.core.errors import ConfigError


def test_shipped_catalog_has_the_issue_templates() -> None:
    catalog = shipped()
    assert {"lift.half_monthly", "lift.quarterly", "lift.half_yearly", "lift.annual", "pump.monthly",
            "pump.annual", "gate.annual", "meter.annual"} <= set(catalog.templates)
    half = catalog.get("lift.half_monthly")
    assert half.interval.days == 15
    assert half.bounds.max_days == 15
    for template in catalog.templates.values():
        for item in template.items:
            assert item.text.zh
            assert item.text.en


def test_a_bad_template_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "templates:\n"
        "  pump.weekly:\n"
        "    kind: pump\n"
        "    skill: water\n"
        "    name: {zh: 周检, en: Weekly}\n"
        "    interval: {days: 7}\n"
        "    bounds: {min_days: 5, max_days: 9}\n"
        "    items:\n"
        "      - {id: pressure, check: reading, text: {zh: 压力, en: Pressure}}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load_catalog(path)
    text = str(err.value)
    assert f"{path}:9" in text
    assert "items" in text
    assert "expected" in text


def test_interval_outside_its_own_bounds_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "templates:\n"
        "  gate.monthly:\n"
        "    kind: gate\n"
        "    skill: access\n"
        "    name: {zh: 月检, en: Monthly}\n"
        "    interval: {days: 40}\n"
        "    bounds: {min_days: 20, max_days: 35}\n"
        "    items:\n"
        "      - {id: arm, check: pass_fail, text: {zh: 闸杆, en: Arm}}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="outside bounds"):
        load_catalog(path)


def test_a_site_file_adds_to_the_shipped_templates(tmp_path: Path) -> None:
    path = tmp_path / "site.yaml"
    path.write_text(
        "templates:\n"
        "  gate.monthly:\n"
        "    kind: gate\n"
        "    skill: access\n"
        "    name: {zh: 月检, en: Monthly}\n"
        "    interval: {months: 1}\n"
        "    bounds: {min_days: 20, max_days: 35}\n"
        "    items:\n"
        "      - {id: arm, check: pass_fail, text: {zh: 闸杆, en: Arm}}\n", encoding="utf-8")
    catalog = load_catalog(path)
    assert "gate.monthly" in catalog.templates
    assert "lift.half_monthly" in catalog.templates


@pytest.mark.parametrize(("day", "months", "expected"), [
    (date(2027, 1, 31), 1, date(2027, 2, 28)),
    (date(2028, 1, 31), 1, date(2028, 2, 29)),   # leap year
    (date(2026, 12, 31), 1, date(2027, 1, 31)),  # year end
    (date(2027, 8, 31), 6, date(2028, 2, 29)),
    (date(2027, 3, 15), 12, date(2028, 3, 15)),
])
def test_calendar_months_keep_the_day_and_clamp_at_month_end(day: date, months: int, expected: date) -> None:
    assert add_months(day, months) == expected


def test_next_due_across_month_ends() -> None:
    catalog = shipped()
    pump = catalog.get("pump.monthly")
    d = next_due(pump, last_done=date(2027, 1, 31), starts_on=date(2027, 1, 1), plan_days=None,
                 condition_based=False, health=None)
    assert d.due_on == date(2027, 2, 28)
    assert d.interval_days == 28
    assert "1 个月" in d.reason
    lift = catalog.get("lift.half_monthly")
    d = next_due(lift, last_done=date(2027, 2, 20), starts_on=date(2027, 1, 1), plan_days=None,
                 condition_based=False, health=None)
    assert d.due_on == date(2027, 3, 7)
    first = next_due(lift, last_done=None, starts_on=date(2027, 1, 31), plan_days=None, condition_based=True,
                     health=None)
    assert first.due_on == date(2027, 1, 31)
    assert "首次" in first.reason


def test_condition_based_interval_stays_within_bounds_and_says_why() -> None:
    lift = shipped().get("lift.half_monthly")  # 15 days, bounds 7..15, 6000 trips per interval
    last = date(2027, 1, 31)
    healthy = Health(score=97, window_days=30, figures={"trips": 3000, "faults": {}})
    d = next_due(lift, last_done=last, starts_on=last, plan_days=None, condition_based=True, health=healthy)
    assert d.interval_days == 15
    assert d.due_on == date(2027, 2, 15)
    assert "上限 15" in d.reason
    assert "+25%" in d.reason

    sick = Health(score=40, window_days=30, figures={"trips": 3000, "faults": {"door": 4, "overspeed": 2}},
                  open_detections=1)
    d = next_due(lift, last_done=last, starts_on=last, plan_days=None, condition_based=True, health=sick)
    assert d.interval_days == 7
    assert "下限 7" in d.reason
    assert "-40%" in d.reason

    busy = Health(score=85, window_days=30, figures={"trips": 15000, "faults": {}})  # 500 trips/day → 12 days
    d = next_due(lift, last_done=last, starts_on=last, plan_days=None, condition_based=True, health=busy)
    assert d.interval_days == 12
    assert "run-based" in d.reason

    normal = Health(score=80, window_days=30, figures={"trips": 1000})
    d = next_due(lift, last_done=last, starts_on=last, plan_days=None, condition_based=True, health=normal)
    assert d.interval_days == 15
    assert "standard interval" in d.reason

    pump = shipped().get("pump.monthly")  # 30 days nominal, bounds 14..45
    d = next_due(pump, last_done=last, starts_on=last, plan_days=None, condition_based=True,
                 health=Health(score=95, window_days=30, figures={"run_hours": 100}))
    assert d.interval_days == 38  # 30 × 1.25 = 37.5 → 38, inside 45; run quota far away


def test_condition_based_without_health_keeps_the_fixed_interval() -> None:
    lift = shipped().get("lift.half_monthly")
    d = next_due(lift, last_done=date(2027, 1, 31), starts_on=date(2027, 1, 1), plan_days=None,
                 condition_based=True, health=None)
    assert d.interval_days == 15
    assert "no health record" in d.reason
