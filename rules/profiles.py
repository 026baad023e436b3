"""Rules meet device profiles: enum labels for the evaluator, and cross-checks for ``rules check``.

Profiles decode enum points to their integer code (as the device sends them); rules are written
with the labels (``door_state: open``), because codes differ between device models and nobody can
review ``eq: 1``. :func:`enum_tables` gives the engine, per profile and per kind, the code → label
tables it uses to translate readings once, at the door.

:func:`check_against_profiles` catches a rule that can never fire: a metric no profile of its kinds
has, an enum label the profile does not know, a bit the bitfield does not name.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from typing import Any

from device_profiles.model import Point, Profile
from guanjia.core.errors import ConfigIssue
from rules.model import PSEUDO_METRICS, AllOf, AnyOf, Compare, NotOf
from rules.ruleset import CompiledRule, RuleSet

EnumTables = Mapping[str, Mapping[str, Mapping[int, str]]]
"""``{profile id or kind: {metric: {code: label}}}``."""

_BUILTIN_FIELDS = frozenset({"device", "kind", "rule", "severity", "value", "metric"})


def enum_tables(profiles: Iterable[Profile]) -> dict[str, dict[str, dict[int, str]]]:
    """Enum tables per profile id, plus per kind for metrics on which that kind's profiles agree."""
    out: dict[str, dict[str, dict[int, str]]] = {}
    by_kind: dict[str, dict[str, dict[int, str] | None]] = {}
    for profile in profiles:
        tables = {p.name: dict(p.enum) for p in profile.points if p.enum}
        out[profile.id] = tables
        kind_tables = by_kind.setdefault(profile.kind, {})
        for metric, table in tables.items():
            if metric not in kind_tables:
                kind_tables[metric] = table
            elif kind_tables[metric] != table:
                kind_tables[metric] = None  # two models disagree: only the profile id can tell
    for kind, agreed in by_kind.items():
        out.setdefault(kind, {t: v for t, v in agreed.items() if v is not None})
    return out


@functools.cache
def builtin_enum_tables() -> dict[str, dict[str, dict[int, str]]]:
    """Enum tables of the shipped profiles (parsed once per process)."""
    from device_profiles.loader import builtin_profiles

    return enum_tables(builtin_profiles().values())


def _points_by_kind(profiles: Iterable[Profile]) -> dict[str, dict[str, list[tuple[str, Point]]]]:
    out: dict[str, dict[str, list[tuple[str, Point]]]] = {}
    for profile in profiles:
        metrics = out.setdefault(profile.kind, {})
        for point in profile.points:
            metrics.setdefault(point.name, []).append((profile.id, point))
    return out


def check_against_profiles(ruleset: RuleSet, profiles: Iterable[Profile]) -> list[ConfigIssue]:
    """Problems that make a rule unable to fire on the given profiles (one issue per problem)."""
    profile_list = list(profiles)
    known = {p.id: p for p in profile_list}
    issues: list[ConfigIssue] = []
    for cr in ruleset.rules:
        issues.extend(_check_rule(cr, profile_list, known))
    return issues


def _check_rule(cr: CompiledRule, profiles: list[Profile], known: Mapping[str, Profile]) -> list[ConfigIssue]:
    rule = cr.rule
    issues: list[ConfigIssue] = []

    def issue(field: str, message: str) -> None:
        issues.append(ConfigIssue(cr.source.file, cr.source.line, f"{rule.id}.{field}", message))

    if rule.profiles is not None:
        for pid in rule.profiles:
            if pid not in known:
                issue("profiles", f"unknown profile {pid!r} (known: {', '.join(sorted(known))})")
            elif known[pid].kind not in rule.kinds:
                issue("profiles", f"profile {pid!r} is a {known[pid].kind}, not one of kinds {rule.kinds}")
    for kind in rule.kinds:
        candidates = [p for p in profiles if p.kind == kind and (rule.profiles is None or p.id in rule.profiles)]
        if not candidates:
            issue("kinds", f"no profile of kind {kind!r} to check against")
            continue
        points = _points_by_kind(candidates).get(kind, {})
        names = ", ".join(p.id for p in candidates)
        for metric in sorted(cr.metrics | _value_metrics(cr)):
            if metric not in points and metric not in PSEUDO_METRICS:
                issue(rule.condition_type, f"metric {metric!r} is not a point of any {kind} profile ({names})")
        context = set(cr.cond.context(cr.cond.new(0)))
        for template in (cr.template, cr.template_zh, cr.clear_template):
            if template is None:
                continue
            for name in template.names:
                if name not in _BUILTIN_FIELDS and name not in context and name not in points:
                    issue("message", f"template field {{{name}}} is neither an alarm field nor a {kind} metric")
        for cmp in _compares(rule.condition):
            if isinstance(cmp.metric, str) and cmp.metric in points:
                issues.extend(_check_compare(cr, cmp, points[cmp.metric]))
    return issues


def _value_metrics(cr: CompiledRule) -> set[str]:
    from rules.expr import metrics_of

    return (
        metrics_of(cr.rule.value)
        if cr.rule.value is not None and not isinstance(cr.rule.value, str)
        else ({cr.rule.value} if isinstance(cr.rule.value, str) else set())
    )


def _compares(node: Any) -> list[Compare]:
    if isinstance(node, Compare):
        return [node]
    if isinstance(node, AllOf):
        return [c for sub in node.all for c in _compares(sub)]
    if isinstance(node, AnyOf):
        return [c for sub in node.any for c in _compares(sub)]
    if isinstance(node, NotOf):
        return _compares(node.not_)
    out: list[Compare] = []
    for name in ("while_", "edges"):
        sub = getattr(node, name, None)
        if sub is not None:
            out.extend(_compares(sub))
    return out


def _check_compare(cr: CompiledRule, cmp: Compare, points: list[tuple[str, Point]]) -> list[ConfigIssue]:
    issues: list[ConfigIssue] = []
    where = cr.rule.condition_type
    labels = [v for v in (cmp.eq, cmp.ne, *(cmp.in_ or []), *(cmp.not_in or [])) if isinstance(v, str)]
    for label in labels:
        enums = [p.enum for _pid, p in points if p.enum]
        if not enums:
            issues.append(
                ConfigIssue(
                    cr.source.file,
                    cr.source.line,
                    f"{cr.rule.id}.{where}",
                    f"{cmp.metric!r} is not an enum point; {label!r} can never match",
                )
            )
        elif not any(label.lower() in (v.lower() for v in e.values()) for e in enums):
            valid = sorted({v for e in enums for v in e.values()})
            issues.append(
                ConfigIssue(
                    cr.source.file,
                    cr.source.line,
                    f"{cr.rule.id}.{where}",
                    f"{label!r} is not a value of {cmp.metric} (valid: {', '.join(valid)})",
                )
            )
    for bit in (cmp.bit, cmp.bit_clear):
        if bit is None:
            continue
        named = [p.bits for _pid, p in points if p.bits]
        if named and not any(bit in b for b in named):
            issues.append(
                ConfigIssue(
                    cr.source.file,
                    cr.source.line,
                    f"{cr.rule.id}.{where}",
                    f"bit {bit} of {cmp.metric} is not named in any profile",
                )
            )
    return issues
