"""Checklist templates of planned maintenance, read from YAML with strict pydantic models.

The shipped catalog (``templates.yaml`` beside this module) covers lifts (half-monthly, quarterly,
half-yearly, annual, after TSG T5002-2017's annexes, summarised in our words), pumps (monthly,
annual), gates and meters (annual). A site adds or replaces templates with its own file
(:func:`load_catalog`); every error names the file, line and field (:mod:`guanjia.core.config`).

Each template carries its own *bounds*: the shortest and longest interval a plan may reach when
it is condition- or run-based (按需维保), so no health record can push a lift past the 15 days the
law allows unless a site's own template says otherwise (a pilot city's exemption).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from guanjia.core.config import load_model

SHIPPED = Path(__file__).with_name("templates.yaml")


class Text(BaseModel):
    """A user-facing text in both languages (Chinese first, the default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)

    def __str__(self) -> str:
        return f"{self.zh} / {self.en}"


class Interval(BaseModel):
    """Every ``days`` days, or every ``months`` calendar months (exactly one)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    days: int | None = Field(default=None, gt=0, le=3660)
    months: int | None = Field(default=None, gt=0, le=120)

    @model_validator(mode="after")
    def _one(self) -> Self:
        if (self.days is None) == (self.months is None):
            raise ValueError("give exactly one of days or months")
        return self

    def nominal_days(self) -> int:
        """The length in days used to compare with bounds (a month counts 30.44 days)."""
        return self.days if self.days is not None else round((self.months or 0) * 30.44)


class Bounds(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min_days: int = Field(gt=0)
    max_days: int = Field(gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min_days > self.max_days:
            raise ValueError(f"min_days {self.min_days} is above max_days {self.max_days}")
        return self


class RunBased(BaseModel):
    """Due after ``per_interval`` units of a health-record figure (lift ``trips``, pump
    ``run_hours``), estimated from the device's recent rate; clamped to the bounds."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    figure: Literal["trips", "door_cycles", "run_hours", "running_hours", "starts"]
    per_interval: float = Field(gt=0)


class Expected(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: float | None = None
    max: float | None = None

    def holds(self, value: float) -> bool:
        return (self.min is None or value >= self.min) and (self.max is None or value <= self.max)


class Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    text: Text
    check: Literal["pass_fail", "reading"]
    unit: str = ""
    expected: Expected | None = None
    photo: bool = False

    @model_validator(mode="after")
    def _reading(self) -> Self:
        if self.check == "reading" and self.expected is None:
            raise ValueError("a reading needs expected: {min, max}")
        if self.check == "pass_fail" and self.expected is not None:
            raise ValueError("a pass_fail item has no expected value")
        return self


class Template(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: Literal["elevator", "pump", "gate", "meter", "fan", "light"]
    skill: Literal["elevator", "water", "electrical", "access", "general"]
    name: Text
    interval: Interval
    bounds: Bounds
    lead_days: int = Field(default=3, ge=0, le=90)
    run_based: RunBased | None = None
    items: list[Item] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        ids = [item.id for item in self.items]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"item ids must be unique: {', '.join(dupes)}")
        nominal = self.interval.nominal_days()
        if not self.bounds.min_days <= nominal <= self.bounds.max_days:
            raise ValueError(f"interval ({nominal} days) lies outside bounds "
                             f"[{self.bounds.min_days}, {self.bounds.max_days}]")
        return self


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    templates: dict[str, Template] = Field(min_length=1)

    def get(self, template_id: str) -> Template:
        try:
            return self.templates[template_id]
        except KeyError:
            raise KeyError(f"unknown maintenance template {template_id!r} "
                           f"(known: {', '.join(sorted(self.templates))})") from None

    def merged(self, other: Catalog) -> Catalog:
        return Catalog(templates={**self.templates, **other.templates})


@cache
def shipped() -> Catalog:
    return load_model(Catalog, SHIPPED)


def load_catalog(path: str | Path | None = None) -> Catalog:
    """The shipped templates, plus (replacing same ids) those of a site's file."""
    if path is None:
        return shipped()
    return shipped().merged(load_model(Catalog, path))
