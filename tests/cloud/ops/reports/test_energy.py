"""Energy section arithmetic by hand (pure): baseline from the weekday × hour profile, savings in
kWh and yuan, targets (own, pro rata from the month), totals equal to the sums of their rows."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from cloud.ops.reports.energy import deviation_pct, section
from cloud.ops.reports.targets import Target, resolve
from cloud.ops.reports.tariffs import shipped
from tests.support.reports import slot_of, slot_rows

SHANGHAI = ZoneInfo("Asia/Shanghai")
DAY = datetime(2027, 1, 31, 0, 0, tzinfo=SHANGHAI)  # a Sunday


def _hours(device: str, building: str | None, kwh: float, n: int = 24) -> list[tuple[str, str | None, datetime, float]]:
    return [(device, building, DAY + timedelta(hours=h), kwh) for h in range(n)]


def test_slot_is_local_monday_midnight_based() -> None:  # as analytics' hour_of_week
    assert slot_of(datetime(2027, 2, 1, 0, 0, tzinfo=SHANGHAI), SHANGHAI) == 0  # Monday 00:00
    assert slot_of(DAY + timedelta(hours=23), SHANGHAI) == 167  # Sunday 23:00


def test_baseline_savings_and_target_by_hand() -> None:
    # m-1 uses 1 kWh every hour of Sunday; its normal Sunday hour is 1.25 kWh
    profile = [1.25] * 168
    got = section(slot_rows(_hours("m-1", "b7", 1.0) + _hours("m-2", "b7", 0.5), SHANGHAI),
                  {"m-1": profile, "m-2": [0.5] * 168}, {None: Decimal("40"), "b7": Decimal("30.000")}, shipped())
    m1 = got.meters[0]
    # actual: 24 kWh = 6 peak + 10 flat + 8 valley → 6.40 + 6.58 + 2.38 = 15.36 (see test_tariffs)
    assert (m1["kwh"], m1["cost"]) == ("24.000", "15.36")
    # baseline: 7.5 peak × 1.0660 = 7.995 → 8.00; 12.5 flat × 0.6580 = 8.225 → 8.23; 10 valley × 0.2980 = 2.98
    assert (m1["baseline_kwh"], m1["baseline_cost"]) == ("30.000", "19.21")
    assert (m1["savings_kwh"], m1["savings_cost"]) == ("6.000", "3.85")
    assert m1["baseline_deviation_pct"] == "-20.0"  # (24 − 30) / 30
    m2 = got.meters[1]
    # 12 kWh: 3 × 1.0660 = 3.198 → 3.20; 5 × 0.6580 = 3.29; 4 × 0.2980 = 1.192 → 1.19
    assert (m2["kwh"], m2["cost"], m2["savings_cost"]) == ("12.000", "7.68", "0.00")
    (b7,) = got.buildings
    assert (b7["kwh"], b7["cost"], b7["baseline_kwh"], b7["baseline_cost"]) == ("36.000", "23.04", "42.000", "26.89")
    assert (b7["savings_kwh"], b7["savings_cost"]) == ("6.000", "3.85")
    assert (b7["target_kwh"], b7["target_deviation_pct"]) == ("30.000", "20.0")  # 36 vs 30
    assert (got.total["kwh"], got.total["cost"], got.total["meters"]) == ("36.000", "23.04", 2)
    assert (got.total["target_kwh"], got.total["target_deviation_pct"]) == ("40", "-10.0")


def test_a_meter_without_baseline_leaves_the_building_without_one() -> None:
    got = section(slot_rows(_hours("m-1", "b7", 1.0) + _hours("m-2", "b7", 1.0), SHANGHAI), {"m-1": [1.0] * 168}, {},
                  shipped())
    assert got.meters[0]["savings_kwh"] == "0.000"
    assert got.meters[1]["baseline_kwh"] is None
    assert got.buildings[0]["baseline_kwh"] is None
    assert got.buildings[0]["savings_cost"] is None
    assert got.total["baseline_kwh"] is None


def test_baseline_counts_only_measured_hours_and_needs_every_slot() -> None:
    # 5 measured hours of 24: the baseline covers those 5 only (no fake saving for the gap)
    got = section(slot_rows(_hours("m-1", None, 2.0, n=5), SHANGHAI), {"m-1": [1.0] * 168}, {}, shipped())
    assert (got.meters[0]["kwh"], got.meters[0]["baseline_kwh"]) == ("10.000", "5.000")
    assert got.buildings[0]["building"] == "-"
    hole = [1.0] * 168
    hole[slot_of(DAY, SHANGHAI)] = None  # type: ignore[call-overload]
    only = section(slot_rows(_hours("m-1", None, 2.0), SHANGHAI), {"m-1": hole}, {}, shipped())
    assert only.meters[0]["baseline_kwh"] is None


def test_deviation_rounds_half_up_and_needs_a_reference() -> None:
    assert deviation_pct(Decimal("1.0005"), Decimal("1")) == Decimal("0.1")
    assert deviation_pct(Decimal("5"), None) is None
    assert deviation_pct(Decimal("5"), Decimal("0")) is None


def _t(building: str | None, period: str, kwh: str, valid_from: date) -> Target:
    return Target("cp", building, period, Decimal(kwh), valid_from)


def test_targets_own_then_month_pro_rata_and_valid_from() -> None:
    rows = [_t(None, "month", "3100", date(2027, 1, 1)), _t(None, "month", "2800", date(2027, 2, 1)),
            _t("b7", "week", "500", date(2027, 1, 1)), _t(None, "month", "9999", date(2027, 3, 1))]
    # January month: 3100 (the March change does not reach back)
    assert resolve(rows, "month", date(2027, 1, 1), date(2027, 2, 1)) == {None: Decimal("3100")}
    # a day in January: 3100 / 31 = 100
    assert resolve(rows, "day", date(2027, 1, 15), date(2027, 1, 16))[None] == Decimal("100.000")
    # the week 25–31 Jan + ... crossing into February: 4 days × 100 + 3 days × 2800/28 = 700; b7 has its own
    week = resolve(rows, "week", date(2027, 1, 29), date(2027, 2, 5))
    assert week == {None: Decimal("700.000"), "b7": Decimal("500")}
    # before any target: nothing
    assert resolve(rows, "month", date(2026, 12, 1), date(2027, 1, 1)) == {}
