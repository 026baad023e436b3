"""The service-level policy: which alarms open work orders, their priority and SLA clocks.

Loaded from YAML (``cloud/ops/model/policy.yaml`` ships the defaults, with sources named in
``docs/workorders.md``); a site overrides it with its own file. Priority comes from the first
matching rule override (rule id glob + device kind), else from the alarm severity. The SLA clocks
(respond = accept, on site, resolve) and the escalation interval come from the priority.
"""

from __future__ import annotations

import fnmatch
import re
from datetime import datetime, timedelta
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from guanjia.core.config import load_model

if TYPE_CHECKING:
    from cloud.runtime.context import ServiceContext

Priority = Literal["P0", "P1", "P2", "P3"]
Skill = Literal["elevator", "water", "electrical", "access", "general"]
DEFAULT_POLICY = Path(__file__).with_name("policy.yaml")


_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)([smhdw])")
_WHOLE = re.compile(r"^(?:\d+(?:\.\d+)?[smhdw])+$")


def _duration(value: object) -> timedelta:
    """"90s", "15m", "1h30m", "7d" or a number of seconds (same spelling as rule files)."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return timedelta(seconds=value)
    text = str(value).replace(" ", "")
    if not _WHOLE.match(text):
        raise ValueError(f"{value!r} is not a duration (write e.g. 30s, 10m, 1h30m, 2d)")
    return timedelta(seconds=sum(float(n) * _UNIT_S[u] for n, u in _PART.findall(text)))


Duration = Annotated[timedelta, BeforeValidator(_duration)]


class Clocks(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    respond: Duration = Field(description="accept (answer) within")
    on_site: Duration = Field(description="reach the site within")
    resolve: Duration = Field(description="resolve within")
    escalate_every: Duration = Field(description="escalate one step up the chain each time this passes unanswered")
    label: str = ""


class ComplaintGrade(BaseModel):
    """The commitments of one complaint grade: handled within, closed (resident told) within."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    handle: Duration = Field(description="investigated and handled within")
    close: Duration = Field(description="feedback given to the resident and closed within")
    label: str = ""


def _default_grades() -> dict[str, ComplaintGrade]:
    return {"serious": ComplaintGrade(handle=timedelta(hours=24), close=timedelta(days=3), label="重大"),
            "general": ComplaintGrade(handle=timedelta(days=3), close=timedelta(days=7), label="一般"),
            "minor": ComplaintGrade(handle=timedelta(days=7), close=timedelta(days=15), label="轻微")}


class PointsRule(BaseModel):
    """Points a volunteer earns per resolved task, by the order's skill."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: int = Field(5, ge=0)
    per_skill: dict[str, int] = Field(default_factory=dict)


class StarRule(BaseModel):
    """How a butler's star level (1–5) is computed (:mod:`cloud.ops.workorders.performance`): the
    weights of each part of the 0–1 score (they must add up to 1), and what counts as full marks
    for the parts that are counts."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rating: float = Field(0.5, ge=0, le=1, description="residents' ratings (Bayesian mean, 1–5 → 0–1)")
    respond: float = Field(0.15, ge=0, le=1, description="share of orders accepted in time")
    on_site: float = Field(0.15, ge=0, le=1, description="share of orders on site in time")
    likes: float = Field(0.1, ge=0, le=1, description="residents' likes in the window")
    years: float = Field(0.05, ge=0, le=1, description="years of service")
    certifications: float = Field(0.05, ge=0, le=1, description="certifications held")
    likes_full: int = Field(10, ge=1, description="likes in the window that earn the whole likes weight")
    years_full: float = Field(5, gt=0, description="years of service that earn the whole years weight")
    certifications_full: int = Field(2, ge=1, description="certifications that earn the whole weight")
    window: Duration = Field(timedelta(days=90), description="how far back orders, ratings and likes count")

    @model_validator(mode="after")
    def _weights_add_up(self) -> StarRule:
        total = self.rating + self.respond + self.on_site + self.likes + self.years + self.certifications
        if abs(total - 1) > 1e-6:
            raise ValueError(f"the weights rating + respond + on_site + likes + years + certifications must add up "
                             f"to 1, got {total:g}")
        return self


class Match(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rule: str = "*"
    kind: str = "*"


class Override(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    match: Match
    priority: Priority | None = None
    work_order: bool | None = None
    auto_close: bool = False
    title: str | None = Field(None, description="the order's title in English (with title_zh, both or neither)")
    title_zh: str | None = Field(None, description="the order's title in Chinese, the default language")
    respond: Duration | None = Field(None, description="this kind of order's own response commitment "
                                                        "(accept within), instead of its priority's")

    @model_validator(mode="after")
    def _both_titles(self) -> Override:
        if (self.title is None) != (self.title_zh is None):
            raise ValueError("give the title in both languages (title and title_zh) or neither")
        return self


class Inhibition(BaseModel):
    """One incident, one ticket (as Alertmanager's inhibit rules): while a gateway is down, and for
    ``grace`` after it is back, the *communication* alarms of the devices behind it are recorded
    but grouped under the gateway's ``gateway_offline`` alarm; and that alarm itself opens its order
    and notifies only once it has lasted ``grace`` (a broker restart or a short uplink drop opens
    nothing). A device alarm is a communication alarm when its rule matches one of ``rules``
    (globs) or its labels contain one of ``labels``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = True
    grace: Duration = Field(default=timedelta(minutes=3),
                            description="how long a gateway may be away, or be back, before anything is opened")
    rules: list[str] = ["*-offline", "*_offline", "*-comm-*", "*_comm_*"]
    labels: dict[str, str] = {"category": "communication"}

    def is_communication(self, rule: str, labels: dict[str, str] | None) -> bool:
        if any(fnmatch.fnmatchcase(rule, pattern) for pattern in self.rules):
            return True
        return any((labels or {}).get(key) == value for key, value in self.labels.items())


class Sla(BaseModel):
    """The clocks of one work order, as absolute deadlines."""

    priority: Priority
    respond_due: datetime
    on_site_due: datetime
    resolve_due: datetime
    escalate_every: timedelta


class Policy(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    priorities: dict[Priority, Clocks]
    severity_priority: dict[str, Priority]
    rule_priority: dict[str, Priority] = {"emergency": "P0", "high": "P1", "normal": "P2", "low": "P3"}
    default_priority: Priority = "P2"
    overrides: list[Override] = []
    kind_skill: dict[str, Skill] = {}
    flap_window: Duration = timedelta(minutes=10)
    reminder_every: Duration = timedelta(minutes=30)
    manual_priority: Priority = "P2"
    resident_reopen_window: Duration = timedelta(days=7)
    complaint_grades: dict[str, ComplaintGrade] = Field(default_factory=_default_grades)
    points: PointsRule = PointsRule()
    stars: StarRule = StarRule()
    """Complaint grades and their commitments (``serious`` / ``general`` / ``minor`` by default)."""
    """How long after an order was resolved its resident may reopen it (not fixed after all)."""
    inhibition: Inhibition = Inhibition()

    def override_for(self, rule: str, kind: str | None) -> Override | None:
        for item in self.overrides:
            if fnmatch.fnmatchcase(rule, item.match.rule) and (item.match.kind in ("*", kind)):
                return item
        return None

    def priority_for(self, severity: str, rule: str, kind: str | None, rule_priority: str | None = None) -> Priority:
        """Site override first, then the rule's own ``priority`` (emergency/high/normal/low, sent
        by the edge in the alarm's labels), then the severity."""
        override = self.override_for(rule, kind)
        if override is not None and override.priority is not None:
            return override.priority
        if rule_priority is not None and rule_priority in self.rule_priority:
            return self.rule_priority[rule_priority]
        return self.severity_priority.get(severity.lower(), self.default_priority)

    def wants_work_order(self, rule_says: bool, rule: str, kind: str | None) -> bool:
        override = self.override_for(rule, kind)
        if override is not None and override.work_order is not None:
            return override.work_order
        return rule_says

    def auto_close(self, rule: str, kind: str | None) -> bool:
        override = self.override_for(rule, kind)
        return override.auto_close if override is not None else False

    def respond_for(self, rule: str, kind: str | None) -> timedelta | None:
        """A site override's own response commitment (the call button's 3 minutes), or None: the
        priority's. Why per override and not a new priority: a call for help is as urgent as a
        trapped passenger (P0: routing, SMS and voice escalation alike) but the commitment made to
        the residents is its own number."""
        override = self.override_for(rule, kind)
        return override.respond if override is not None else None

    def skill_for(self, kind: str | None) -> Skill:
        return self.kind_skill.get(kind or "", "general")

    def sla(self, priority: Priority, opened: datetime) -> Sla:
        clocks = self.priorities[priority]
        return Sla(
            priority=priority,
            respond_due=opened + clocks.respond,
            on_site_due=opened + clocks.on_site,
            resolve_due=opened + clocks.resolve,
            escalate_every=clocks.escalate_every,
        )


def load_policy(path: str | Path | None = None) -> Policy:
    """Read a policy file (errors name file, line and field); ``None`` reads the shipped defaults."""
    if path is None:
        return default_policy()
    return load_model(Policy, path)


@cache
def default_policy() -> Policy:
    return load_model(Policy, DEFAULT_POLICY)


def context_policy(ctx: ServiceContext) -> Policy:
    """The service's one policy (``ctx.policy``, loaded once at start-up), typed.

    The context is defined below ops (:mod:`cloud.runtime.context`) and cannot name this class,
    so it carries the policy as an ``object``; the owner of the type narrows it here. A context
    without a :class:`Policy` is a wiring error of the assembly, caught at the first use."""
    policy = ctx.policy
    if not isinstance(policy, Policy):
        raise TypeError(f"ServiceContext.policy is {type(policy).__name__}, not a work-order Policy")
    return policy
