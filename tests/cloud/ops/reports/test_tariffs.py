"""Time-of-use tariff arithmetic (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from cloud.ops.reports.tariffs import cost_of, load_tariff, shipped
from guanjia.core.errors import ConfigError

SHANGHAI = ZoneInfo("Asia/Shanghai")


def test_a_day_at_one_kwh_an_hour_costs_the_sum_of_its_bands() -> None:
    tariff = shipped()
    start = datetime(2027, 1, 31, 0, 0, tzinfo=SHANGHAI)
    cost = cost_of(tariff, [(start + timedelta(hours=h), 1.0) for h in range(24)], SHANGHAI)
    assert cost.kwh == {"peak": Decimal("6.000"), "flat": Decimal("10.000"), "valley": Decimal("8.000")}
    # 6 × 1.0660 = 6.396 → 6.40; 10 × 0.6580 = 6.58; 8 × 0.2980 = 2.384 → 2.38
    assert cost.cost == {"peak": Decimal("6.40"), "flat": Decimal("6.58"), "valley": Decimal("2.38")}
    assert cost.total_cost == Decimal("15.36")
    assert cost.total_kwh == Decimal("24.000")


def test_bands_follow_local_hours_not_utc() -> None:
    # 00:30 UTC is 08:30 in Shanghai: peak
    cost = cost_of(shipped(), [(datetime(2027, 1, 31, 0, 0, tzinfo=UTC), 2.5)], SHANGHAI)
    assert cost.kwh["peak"] == Decimal("2.500")
    assert cost.cost["peak"] == Decimal("2.67")  # 2.665 rounds half up
    assert cost.cost["valley"] == Decimal("0.00")


def test_fractions_are_priced_once_per_band_not_per_hour() -> None:
    start = datetime(2027, 2, 1, 0, 0, tzinfo=SHANGHAI)
    hours = [(start + timedelta(hours=h), 0.001) for h in range(6)]  # valley, 0.001 kWh each
    cost = cost_of(shipped(), hours, SHANGHAI)
    assert cost.kwh["valley"] == Decimal("0.006")
    assert cost.cost["valley"] == Decimal("0.00")
    many = cost_of(shipped(), [(start + timedelta(hours=h % 6, days=h // 6), 0.1) for h in range(600)], SHANGHAI)
    assert many.kwh["valley"] == Decimal("60.000")  # float sums do not leak into the bill
    assert many.cost["valley"] == Decimal("17.88")


def test_a_tariff_must_cover_every_hour_once(tmp_path: Path) -> None:
    path = tmp_path / "t.yaml"
    path.write_text("bands:\n  peak: {price: '1.0', hours: [8, 9]}\n  flat: {price: '0.6', hours: [9]}\n",
                    encoding="utf-8")
    with pytest.raises(ConfigError, match=r"t\.yaml:1.*hour 9 is in both peak and flat"):
        load_tariff(path)
    path.write_text("bands:\n  peak: {price: '-1', hours: [0]}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"t\.yaml:2.*bands\.peak\.price"):
        load_tariff(path)
