"""The energy section of the manager's report: per meter, per building and for the community, the
kWh and their time-of-use cost, the deviation from the meters' baseline and from the energy
target, and the savings (baseline − actual, in kWh and yuan). Every figure is an exact decimal.

**Baseline.** The meter's own seasonal baseline from analytics
(:class:`cloud.analytics.detectors.meter.MeterDetector`: the median kWh of each weekday × hour
over its training window, ``hour_of_week_kwh``, Monday 00:00 local = slot 0). Why that one and not
"the 4 weeks before" of the device page: a month has a different mix of weekdays and holidays than
the weeks before it, and the weekday × hour profile prices that mix — the baseline of each hour is
what this meter normally uses at this hour of this weekday, costed with the same tariff band as
the actual hour. Only hours *with* a measurement count on both sides, so a meter offline for five
days shows no fake saving. The profile used is the one whose training window ended on or before
the period's start (the newest such), so retraining later never rewrites a past period's report.
A meter without one has no baseline (``null``), and a building or community total has one only
when every meter in it has one — a partial sum would count the missing meters as savings.

**Target.** kWh per community or building and period kind (:mod:`cloud.ops.reports.targets`);
deviation = (actual − target) / target.

Rounding: kWh to 0.001 and money to the fen once per tariff band and meter (as a utility bills it,
:func:`cloud.ops.reports.tariffs.cost_of`); totals are the sums of their rows, so a building's row
is exactly the sum of its meters' and the community's the sum of its buildings'; percentages to
0.1 half-up.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from cloud.ops.reports.tariffs import Cost, Tariff, priced

PCT = Decimal("0.1")
ZERO = Decimal(0)
NO_BUILDING = "-"


def _s(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def deviation_pct(actual: Decimal, reference: Decimal | None) -> Decimal | None:
    """(actual − reference) / reference in percent, 0.1 half-up; None without a reference."""
    if reference is None or reference == 0:
        return None
    return ((actual - reference) * 100 / reference).quantize(PCT, ROUND_HALF_UP)


def baseline_kwh(profile: Sequence[float | None], hours_by_slot: Mapping[int, int],
                 tariff: Tariff) -> dict[str, Decimal] | None:
    """The baseline's kWh per tariff band over the measured hours (``hours_by_slot``: how many
    measured hours fell in each hour-of-week slot); None when the profile lacks a needed slot."""
    if len(profile) != 168:
        return None
    out: dict[str, Decimal] = dict.fromkeys(tariff.bands, ZERO)
    for slot, hours in hours_by_slot.items():
        normal = profile[slot]
        if normal is None or math.isnan(normal):  # never measured in training
            return None
        out[tariff.band_of(slot % 24)] += hours * Decimal(repr(float(normal)))
    return out


@dataclass(frozen=True, slots=True)
class Figures:
    """The summable figures of one meter, building or community."""

    meters: int
    kwh: Decimal
    cost: Decimal
    baseline_kwh: Decimal | None
    baseline_cost: Decimal | None

    @staticmethod
    def total(parts: Sequence[Figures]) -> Figures:
        metered = [p for p in parts if p.meters]
        complete = bool(metered) and all(p.baseline_kwh is not None for p in metered)
        return Figures(sum(p.meters for p in parts), sum((p.kwh for p in parts), ZERO),
                       sum((p.cost for p in parts), ZERO),
                       sum((p.baseline_kwh or ZERO for p in parts), ZERO) if complete else None,
                       sum((p.baseline_cost or ZERO for p in parts), ZERO) if complete else None)

    def row(self, target: Decimal | None = None, with_target: bool = False) -> dict[str, Any]:
        saved_kwh = None if self.baseline_kwh is None else self.baseline_kwh - self.kwh
        saved_cost = None if self.baseline_cost is None else self.baseline_cost - self.cost
        out = {"kwh": str(self.kwh), "cost": str(self.cost), "baseline_kwh": _s(self.baseline_kwh),
               "baseline_cost": _s(self.baseline_cost),
               "baseline_deviation_pct": _s(deviation_pct(self.kwh, self.baseline_kwh)),
               "savings_kwh": _s(saved_kwh), "savings_cost": _s(saved_cost)}
        if with_target:
            out |= {"target_kwh": _s(target), "target_deviation_pct": _s(deviation_pct(self.kwh, target))}
        return out


@dataclass(frozen=True, slots=True)
class EnergySection:
    meters: list[dict[str, Any]]
    buildings: list[dict[str, Any]]
    total: dict[str, Any]
    figures: Figures


def section(slots: Iterable[Mapping[str, Any]], profiles: Mapping[str, Sequence[float | None]],
            targets: Mapping[str | None, Decimal], tariff: Tariff) -> EnergySection:
    """``slots``: rows (device, building, slot, kwh, hours) of :func:`cloud.ops.reports.repo.energy_slots`
    (local hour-of-week slots); ``profiles``: baseline profile per device code; ``targets``: kWh per
    building code, None = the community."""
    actual: dict[tuple[str, str | None], dict[str, Decimal]] = {}
    measured: dict[tuple[str, str | None], dict[int, int]] = defaultdict(dict)
    for row in slots:
        key = (row["device"], row["building"])
        bands = actual.setdefault(key, dict.fromkeys(tariff.bands, ZERO))
        bands[tariff.band_of(int(row["slot"]) % 24)] += Decimal(row["kwh"])
        measured[key][int(row["slot"])] = int(row["hours"])
    meters: list[dict[str, Any]] = []
    per_building: dict[str, list[Figures]] = defaultdict(list)
    for (device, building), bands in sorted(actual.items(), key=lambda kv: kv[0][0]):
        cost = priced(tariff, bands)
        profile = profiles.get(device)
        expected = baseline_kwh(profile, measured[(device, building)], tariff) if profile is not None else None
        normal: Cost | None = priced(tariff, expected) if expected is not None else None
        figures = Figures(1, cost.total_kwh, cost.total_cost, normal.total_kwh if normal else None,
                          normal.total_cost if normal else None)
        per_building[building or NO_BUILDING].append(figures)
        meters.append({"device": device, "building": building, "kwh": str(cost.total_kwh),
                       **{f"kwh_{band}": str(v) for band, v in cost.kwh.items()},
                       **{f"cost_{band}": str(v) for band, v in cost.cost.items()},
                       **{k: v for k, v in figures.row().items() if k != "kwh"},
                       "currency": tariff.currency})
    buildings = []
    building_figures = []
    for building in sorted(set(per_building) | {b for b in targets if b is not None}):
        figures = Figures.total(per_building.get(building, []))
        building_figures.append(figures)
        buildings.append({"building": building, "meters": figures.meters,
                          **figures.row(targets.get(building), with_target=True)})
    total = Figures.total(building_figures)
    return EnergySection(meters, buildings,
                         {"meters": total.meters, **total.row(targets.get(None), with_target=True)}, total)
