"""Time-of-use tariffs (峰/平/谷) and the cost of hourly energy under them.

Money is :class:`~decimal.Decimal`, never float: a monthly bill summed from 720 hourly costs in
floats drifts by fen, and a report must show the same total as the sum of its own rows. Energy
is kept per band in kWh (float, as measured, rounded to 0.001 kWh once per band) and priced once
per band: cost = round(kWh × price, 2 places, half-up), the way a utility bill is computed, not
per hour. Hours are the community's local hours (a meter's hour 08:00–09:00 in Shanghai is peak
whatever UTC says); each hour 0–23 belongs to exactly one band (checked at load, with file:line).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from pathlib import Path
from typing import Literal, Self
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, model_validator

from guanjia.core.config import load_model

SHIPPED = Path(__file__).with_name("tariffs.yaml")
Band = Literal["peak", "flat", "valley"]
FEN = Decimal("0.01")
KWH = Decimal("0.001")


class BandPrice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    price: Decimal = Field(gt=0, le=100, decimal_places=4)
    hours: list[int] = Field(min_length=1)


class Tariff(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    currency: Literal["CNY"] = "CNY"
    bands: dict[Band, BandPrice]

    @model_validator(mode="after")
    def _every_hour_once(self) -> Self:
        seen: dict[int, str] = {}
        for band, spec in self.bands.items():
            for hour in spec.hours:
                if not 0 <= hour <= 23:
                    raise ValueError(f"{band}: hour {hour} is not 0..23")
                if hour in seen:
                    raise ValueError(f"hour {hour} is in both {seen[hour]} and {band}")
                seen[hour] = band
        missing = sorted(set(range(24)) - set(seen))
        if missing:
            raise ValueError(f"hours {missing} belong to no band (each of 0..23 needs one)")
        return self

    def band_of(self, hour: int) -> Band:
        for band, spec in self.bands.items():
            if hour in spec.hours:
                return band
        raise AssertionError("unreachable: every hour has a band (validated)")


@dataclass(frozen=True, slots=True)
class Cost:
    kwh: dict[str, Decimal]
    cost: dict[str, Decimal]

    @property
    def total_kwh(self) -> Decimal:
        return sum(self.kwh.values(), Decimal(0))

    @property
    def total_cost(self) -> Decimal:
        return sum(self.cost.values(), Decimal(0))


def cost_of(tariff: Tariff, hourly: Iterable[tuple[datetime, float]], zone: ZoneInfo) -> Cost:
    """Energy of each hour (its start instant, kWh) → kWh and cost per band."""
    raw: dict[str, float] = dict.fromkeys(tariff.bands, 0.0)
    for start, kwh in hourly:
        if kwh > 0:
            raw[tariff.band_of(start.astimezone(zone).hour)] += kwh
    return priced(tariff, {band: Decimal(repr(v)) for band, v in raw.items()})


def priced(tariff: Tariff, kwh_by_band: dict[str, Decimal]) -> Cost:
    """Exact kWh per band → kWh rounded to 0.001 and its cost rounded to the fen, once per band."""
    kwh_by: dict[str, Decimal] = {band: kwh_by_band.get(band, Decimal(0)).quantize(KWH, ROUND_HALF_UP)
                                  for band in tariff.bands}
    cost_by = {band: (kwh_by[band] * tariff.bands[band].price).quantize(FEN, ROUND_HALF_UP)  # type: ignore[index]
               for band in kwh_by}
    return Cost(kwh_by, cost_by)


@cache
def shipped() -> Tariff:
    return load_model(Tariff, SHIPPED)


def load_tariff(path: str | Path | None = None) -> Tariff:
    return shipped() if path is None else load_model(Tariff, path)
