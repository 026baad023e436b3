"""The rule language: pydantic models of what a rule file may say.

A rule file is ``{rules: [Rule, ...]}``. A rule names exactly one *condition* (``threshold``,
``rate``, ``stuck``, ``count``, ``state``, ``offline`` or ``baseline``) plus the alarm plumbing
shared by every condition (``for``, ``clear_for``, ``hold``, severity, message, work order). The
language is declarative on purpose: there is no expression string and no ``eval``; derived values
(``{max: [voltage_l1, voltage_l2, voltage_l3]}``) and boolean combinations (``all``/``any``/``not``)
are data, validated here and compiled once in :mod:`rules.expr`. See ``docs/rules.md``.
"""

from __future__ import annotations

import re
from datetime import UTC, timedelta, timezone, tzinfo
from typing import Annotated, Any, Final, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    Tag,
    field_validator,
    model_validator,
)

from guanjia.core.wire import valid_id
from rules.duration import parse_duration
from rules.template import check_template

KINDS: Final = ("meter", "pump", "elevator", "gate", "call_button")
"""Device kinds a rule can apply to; the device profiles use the same words."""

SEVERITIES: Final = ("critical", "major", "minor", "warning", "info")
PRIORITIES: Final = ("emergency", "high", "normal", "low")
CONDITIONS: Final = ("threshold", "rate", "stuck", "count", "state", "offline", "baseline")

Kind = Literal["meter", "pump", "elevator", "gate", "call_button"]
Severity = Literal["critical", "major", "minor", "warning", "info"]
Priority = Literal["emergency", "high", "normal", "low"]
Scalar = bool | int | float | str

Duration = Annotated[int, BeforeValidator(parse_duration)]
"""Milliseconds, written as ``30s``, ``10m``, ``1h30m`` or a number of seconds."""


PSEUDO_METRICS: Final = {
    "$ts": "the reading's timestamp (the agent's clock) in epoch seconds; compare with a device clock point",
    "$quality": "the reading's quality name (good, clock_skew, bad...; per-point qualities when all agree)",
}
"""Values the engine adds to every reading; rules may test them like metrics."""


def _metric_name(value: str) -> str:
    if value in PSEUDO_METRICS:
        return value
    if not valid_id(value):
        raise ValueError(
            f"{value!r} is not a metric name (letters, digits, _ . : -, or one of {', '.join(PSEUDO_METRICS)})"
        )
    return value


MetricName = Annotated[str, BeforeValidator(lambda v: _metric_name(v) if isinstance(v, str) else v)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


# --------------------------------------------------------------------------- value expressions


def _expr_tag(value: Any) -> str:
    return "[metric]" if isinstance(value, str) else "[expr]"


class Expr(_Strict):
    """A derived value: exactly one operator over metrics or nested expressions.

    ``min``/``max``/``sum``/``product``/``mean``/``spread`` (max − min) take a list; ``diff``
    (a − b) and ``ratio`` (a / b) take two; ``abs`` takes one. A missing operand makes the result
    unknown, and so does a ratio over zero.
    """

    min: list[ValueExpr] | None = None
    max: list[ValueExpr] | None = None
    sum: list[ValueExpr] | None = None
    product: list[ValueExpr] | None = None
    mean: list[ValueExpr] | None = None
    spread: list[ValueExpr] | None = None
    diff: list[ValueExpr] | None = Field(None, min_length=2, max_length=2)
    ratio: list[ValueExpr] | None = Field(None, min_length=2, max_length=2)
    abs: ValueExpr | None = None

    @model_validator(mode="after")
    def _one_operator(self) -> Expr:
        given = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "write exactly one of min, max, sum, product, mean, spread, diff, ratio, abs"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    @property
    def op(self) -> str:
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)


ValueExpr = Annotated[
    Annotated[MetricName, Tag("[metric]")] | Annotated[Expr, Tag("[expr]")],
    Discriminator(_expr_tag),
]
"""A metric name, or a derived value such as ``{max: [voltage_l1, voltage_l2]}``."""


# --------------------------------------------------------------------------- predicates


class Compare(_Strict):
    """A test on one value. Several operators in one test must all hold (``above`` + ``below``
    is a band); at least one is required."""

    metric: ValueExpr
    eq: Scalar | None = None
    ne: Scalar | None = None
    in_: list[Scalar] | None = Field(None, alias="in", min_length=1)
    not_in: list[Scalar] | None = Field(None, min_length=1)
    above: float | None = None
    below: float | None = None
    at_least: float | None = None
    at_most: float | None = None
    bit: int | None = Field(None, ge=0, le=63, description="true when this bit is set")
    bit_clear: int | None = Field(None, ge=0, le=63, description="true when this bit is clear")

    @model_validator(mode="after")
    def _has_operator(self) -> Compare:
        if all(getattr(self, n) is None for n in _COMPARE_OPS):
            raise ValueError(f"a test needs an operator: one of {', '.join(_OP_NAMES)}")
        return self


_COMPARE_OPS: Final = ("eq", "ne", "in_", "not_in", "above", "below", "at_least", "at_most", "bit", "bit_clear")
_OP_NAMES: Final = tuple(n.rstrip("_") for n in _COMPARE_OPS)


class AllOf(_Strict):
    all: list[Predicate] = Field(min_length=1)


class AnyOf(_Strict):
    any: list[Predicate] = Field(min_length=1)


class NotOf(_Strict):
    not_: Predicate = Field(alias="not")


def _predicate_tag(value: Any) -> str:
    # called with raw YAML data when validating and with model instances when serialising
    for model, tag in ((AllOf, "[all]"), (AnyOf, "[any]"), (NotOf, "[not]")):
        if isinstance(value, model):
            return tag
    if isinstance(value, dict):
        for key in ("all", "any", "not"):
            if key in value:
                return f"[{key}]"
    return "[compare]"


Predicate = Annotated[
    Annotated[AllOf, Tag("[all]")]
    | Annotated[AnyOf, Tag("[any]")]
    | Annotated[NotOf, Tag("[not]")]
    | Annotated[Compare, Tag("[compare]")],
    Discriminator(_predicate_tag),
]
"""``{metric: x, eq: v}`` or ``{all: [...]}`` / ``{any: [...]}`` / ``{not: ...}``."""


# --------------------------------------------------------------------------- conditions


class Threshold(_Strict):
    """Value beyond a limit, with hysteresis: once raised, it clears only past the clear level."""

    metric: ValueExpr
    above: float | None = None
    below: float | None = None
    clear_below: float | None = None
    clear_above: float | None = None
    hysteresis: float | None = Field(None, ge=0)
    while_: Predicate | None = Field(None, alias="while")

    @model_validator(mode="after")
    def _direction(self) -> Threshold:
        if (self.above is None) == (self.below is None):
            raise ValueError("write exactly one of above or below")
        if self.above is not None:
            if self.clear_above is not None:
                raise ValueError("clear_above goes with below; with above write clear_below")
            if self.clear_below is not None and self.clear_below > self.above:
                raise ValueError(f"clear_below ({self.clear_below}) must not exceed above ({self.above})")
        if self.below is not None:
            if self.clear_below is not None:
                raise ValueError("clear_below goes with above; with below write clear_above")
            if self.clear_above is not None and self.clear_above < self.below:
                raise ValueError(f"clear_above ({self.clear_above}) must not be under below ({self.below})")
        if self.hysteresis is not None and (self.clear_above is not None or self.clear_below is not None):
            raise ValueError("write hysteresis or a clear level, not both")
        return self

    @property
    def trigger(self) -> float:
        return self.above if self.above is not None else self.below  # type: ignore[return-value]

    @property
    def clear_level(self) -> float:
        """The level the value must cross back over before the condition is false again."""
        hyst = self.hysteresis or 0.0
        if self.above is not None:
            return self.clear_below if self.clear_below is not None else self.above - hyst
        assert self.below is not None
        return self.clear_above if self.clear_above is not None else self.below + hyst


Per = Literal["second", "minute", "hour", "day"]
PER_MS: Final = {"second": 1000, "minute": 60_000, "hour": 3_600_000, "day": 86_400_000}


class Rate(_Strict):
    """Rate of change over a sliding window, in units per ``per``; ``above``/``below`` are signed."""

    metric: ValueExpr
    window: Duration = Field(gt=0)
    per: Per = "minute"
    above: float | None = None
    below: float | None = None
    min_span: Duration | None = Field(None, description="least data span before judging (default window/2)")
    while_: Predicate | None = Field(None, alias="while")

    @model_validator(mode="after")
    def _limit(self) -> Rate:
        if self.above is None and self.below is None:
            raise ValueError("write above and/or below (rate per unit of 'per', signed)")
        if self.min_span is not None and self.min_span > self.window:
            raise ValueError("min_span cannot exceed window")
        return self


class Stuck(_Strict):
    """A value that does not change for ``unchanged_for`` while ``while`` holds (floor stuck while
    the car is moving). Changes within ``tolerance`` do not count as a change."""

    metric: ValueExpr
    unchanged_for: Duration = Field(gt=0)
    tolerance: float = Field(0.0, ge=0)
    while_: Predicate | None = Field(None, alias="while")


class Count(_Strict):
    """Event patterns: at least ``at_least`` occurrences ``within`` a sliding window.

    ``edges`` counts the times a predicate turns true (door opened); ``increase`` sums how much a
    counter metric grew (door cycle counter), tolerating counter resets.
    """

    edges: Predicate | None = None
    increase: ValueExpr | None = None
    at_least: float = Field(gt=0)
    within: Duration = Field(gt=0)

    @model_validator(mode="after")
    def _source(self) -> Count:
        if (self.edges is None) == (self.increase is None):
            raise ValueError("write exactly one of edges (a test to count) or increase (a counter metric)")
        if self.edges is not None and (self.at_least != int(self.at_least) or self.at_least > 10_000):
            raise ValueError("with edges, at_least is a whole number up to 10000")
        return self


class Offline(_Strict):
    """No reading (or no ``metric`` heartbeat) for ``after``; or a reading flagged ``offline``."""

    after: Duration = Field(gt=0)
    metric: MetricName | None = Field(None, description="only readings carrying this metric count")
    on_quality: bool = Field(True, description="a reading with quality offline raises at once")


def _tz(value: str) -> tzinfo:
    match = re.fullmatch(r"([+-])(\d{2}):(\d{2})", value)
    if match:
        sign = -1 if match.group(1) == "-" else 1
        return timezone(sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3))))
    if value.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {value!r} (write e.g. Asia/Shanghai or +08:00)") from exc


class Baseline(_Strict):
    """Deviation from a learned normal for the same hour of the week (or day).

    ``bucket: none`` keeps one baseline for all hours: with a small ``alpha`` it is a slow learned
    normal that a slow degradation (bearing wear over days) drifts away from.

    Each clock hour's ``aggregate`` of ``metric`` (``increase`` for an energy counter, ``mean`` for
    power, ``sum``/``last`` for rollups fed by the cloud) is compared, when the hour ends, with an
    exponentially weighted mean of past hours in the same bucket; only then is it learned.
    """

    metric: ValueExpr
    aggregate: Literal["mean", "increase", "sum", "last"] = "mean"
    bucket: Literal["hour_of_week", "hour_of_day", "none"] = "hour_of_week"
    above_pct: float | None = Field(None, gt=0)
    below_pct: float | None = Field(None, gt=0, lt=100)
    clear_pct: float | None = Field(None, ge=0, description="back within this % to clear (default 2/3 of the limit)")
    min_samples: int = Field(3, ge=1, description="hours learned in a bucket before it may fire")
    alpha: float = Field(0.25, gt=0, le=1, description="EWMA weight of a new normal hour")
    min_delta: float = Field(0.0, ge=0, description="ignore deviations smaller than this, in the metric's unit")
    timezone: str = "UTC"
    while_: Predicate | None = Field(None, alias="while")

    @field_validator("timezone")
    @classmethod
    def _known_tz(cls, value: str) -> str:
        _tz(value)
        return value

    @model_validator(mode="after")
    def _limit(self) -> Baseline:
        if self.above_pct is None and self.below_pct is None:
            raise ValueError("write above_pct and/or below_pct (percent away from the baseline)")
        return self

    @property
    def tzinfo(self) -> tzinfo:
        return _tz(self.timezone)


# --------------------------------------------------------------------------- rule and file


class Title(_Strict):
    """A rule's name as people read it, in Chinese (the default language) and English: the device
    page and the inbox show it in the reader's language beside the message the edge rendered."""

    zh: str = Field(min_length=1, max_length=80)
    en: str = Field(min_length=1, max_length=80)

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


class RuleCommand(_Strict):
    """A command the rule asks for when its alarm is raised: a write (``point`` and ``value``, e.g.
    ``{point: fault_reset, value: true}``) or an action of the device profile (``action: open``),
    to the alarm's device or to ``device`` (another device of the community: the gate to open on a
    fire alarm). At most one per alarm episode.

    Why the cloud sends it and not the edge: every command goes through one validated, audited path
    (the cloud's check against the profile, the ``device_commands`` trail with ``rule:<id>`` as the
    sender, the dispatcher's expiry), whoever asks for it; the edge only says, in the alarm's
    ``command`` label, that the rule wants it."""

    point: MetricName | None = None
    value: Scalar | None = None
    action: str | None = Field(None, pattern=r"^[a-z][a-z0-9_]{0,62}$")
    device: str | None = Field(None, description="the target's device id; default: the alarm's device")

    @field_validator("device")
    @classmethod
    def _device(cls, value: str | None) -> str | None:
        if value is not None and not valid_id(value):
            raise ValueError(f"{value!r} is not a device id")
        return value

    @model_validator(mode="after")
    def _one_kind(self) -> RuleCommand:
        partial = (self.point is None) != (self.value is None)
        if partial or (self.point is not None) == (self.action is not None):
            raise ValueError("write either point and value (a write) or action (e.g. open)")
        return self


class Rule(_Strict):
    """One alarm rule. ``for`` delays the raise, ``clear_for`` the clear, ``hold`` is the least time
    an alarm stays raised (flap damping); all apply to every condition type."""

    id: str
    title: Title | None = Field(None, description="zh/en name of the fault (the shipped rules all have one)")
    severity: Severity
    kinds: list[Kind] = Field(min_length=1)
    devices: list[str] | None = Field(None, description="device id glob patterns; default all")
    profiles: list[str] | None = Field(None, description="profile ids; default all")
    description: str = ""
    message: str
    message_zh: str | None = Field(None, description="the message in Chinese, same fields (shipped rules: all)")
    clear_message: str | None = None
    work_order: bool = False
    priority: Priority | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    value: ValueExpr | None = Field(None, description="value reported in the alarm (default: the condition's)")
    for_: Duration = Field(0, alias="for")
    clear_for: Duration = 0
    hold: Duration = 0
    enabled: bool = True
    command: RuleCommand | None = Field(None, description="a command the cloud sends when the alarm is raised")

    threshold: Threshold | None = None
    rate: Rate | None = None
    stuck: Stuck | None = None
    count: Count | None = None
    state: Predicate | None = None
    offline: Offline | None = None
    baseline: Baseline | None = None

    @field_validator("id")
    @classmethod
    def _topic_safe(cls, value: str) -> str:
        if not valid_id(value):
            raise ValueError("a rule id is 1-64 of letters, digits, _ . : - (it becomes part of alarm ids)")
        return value

    @field_validator("message", "message_zh", "clear_message")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is not None:
            check_template(value)
        return value

    @field_validator("labels")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            if not valid_id(key):
                raise ValueError(f"label name {key!r} is not an id")
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> Rule:
        given = [name for name in CONDITIONS if getattr(self, name) is not None]
        if len(given) != 1:
            got = f" (got {', '.join(given)})" if given else ""
            raise ValueError(f"a rule needs exactly one condition: {', '.join(CONDITIONS)}{got}")
        if self.priority is not None and not self.work_order:
            raise ValueError("priority is for work orders: set work_order: true or drop priority")
        return self

    @property
    def condition_type(self) -> str:
        return next(name for name in CONDITIONS if getattr(self, name) is not None)

    @property
    def condition(self) -> Any:
        return getattr(self, self.condition_type)


class RuleFile(_Strict):
    """The top level of a rule file."""

    version: Literal[1] = 1
    rules: list[Rule] = Field(default_factory=list)


Expr.model_rebuild()
AllOf.model_rebuild()
AnyOf.model_rebuild()
NotOf.model_rebuild()
Compare.model_rebuild()
