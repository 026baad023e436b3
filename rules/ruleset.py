"""Rule sets: validated, compiled rules with the place each was written, and their loaders.

``load_ruleset(paths)`` reads files or directories of ``*.yaml`` through :mod:`guanjia.core.config`, so
every mistake is reported as ``file:line: field: message``, all files at once. Rule ids are unique
across the whole set: a duplicate names both places.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import orjson

from guanjia.core.config import load_yaml, parse_model
from guanjia.core.errors import ConfigError, ConfigIssue
from rules.conditions import Condition, OfflineCondition, build
from rules.expr import ValueFn, compile_value, metrics_of
from rules.model import PSEUDO_METRICS, Expr, Rule, RuleFile
from rules.template import Template

LIBRARY: Final = Path(__file__).with_name("library")
COMMAND_LABEL: Final = "command"
MESSAGE_ZH_LABEL: Final = "message_zh"
"""The alarm label that carries the message in Chinese (``message_zh`` of the rule)."""
"""The alarm label carrying a rule's ``command:`` as JSON (read by :mod:`cloud.ops.automation`)."""

# parts of a rule that do not change what the evaluator computes: editing them keeps its state
_PRESENTATION: Final = {"description", "message", "message_zh", "clear_message", "severity", "work_order", "priority",
                        "labels"}


@dataclass(frozen=True, slots=True)
class Source:
    file: str
    line: int | None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line is not None else self.file


@dataclass(eq=False, slots=True)
class CompiledRule:
    """A rule ready to evaluate: its condition evaluator, metrics, templates and fingerprint."""

    rule: Rule
    source: Source
    cond: Condition
    metrics: frozenset[str]
    template: Template
    template_zh: Template | None
    """The Chinese message (``message_zh``): rendered beside the English one into the alarm's
    ``message_zh`` label, so the cloud shows each reader their language (the wire's ``message``
    stays one string, as every consumer of the contract reads it)."""
    clear_template: Template | None
    value_fn: ValueFn | None
    labels: dict[str, str]
    fingerprint: str
    offline: bool
    timed: bool
    always: bool
    """Uses only pseudo metrics ($ts, $quality), present in every reading: evaluate on every reading."""
    keep: frozenset[str]
    """Every name whose latest value this rule may need after a restart (snapshot content)."""

    @property
    def id(self) -> str:
        return self.rule.id

    def applies(self, device: str, kind: str, profile: str | None) -> bool:
        rule = self.rule
        if not rule.enabled or kind not in rule.kinds:
            return False
        if rule.profiles is not None and profile not in rule.profiles:
            return False
        return rule.devices is None or any(fnmatch.fnmatchcase(device, pat) for pat in rule.devices)


def compile_rule(rule: Rule, source: Source) -> CompiledRule:
    cond = build(rule)
    metrics = frozenset(metrics_of(rule.condition))
    template = Template(rule.message)
    template_zh = Template(rule.message_zh) if rule.message_zh is not None else None
    clear_template = Template(rule.clear_message) if rule.clear_message is not None else None
    labels = dict(rule.labels)
    if rule.priority is not None:
        labels["priority"] = rule.priority
    labels.setdefault("condition", rule.condition_type)
    if rule.command is not None:
        # travels with the alarm; the cloud sends the command (see rules.model.RuleCommand)
        labels[COMMAND_LABEL] = orjson.dumps(rule.command.model_dump(mode="json", exclude_none=True)).decode()
    semantic = rule.model_dump(mode="json", by_alias=True, exclude=_PRESENTATION)
    fingerprint = hashlib.sha1(orjson.dumps(semantic, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]
    return CompiledRule(
        rule=rule,
        source=source,
        cond=cond,
        metrics=metrics,
        template=template,
        template_zh=template_zh,
        clear_template=clear_template,
        value_fn=compile_value(rule.value) if rule.value is not None else None,
        labels=labels,
        fingerprint=fingerprint,
        offline=isinstance(cond, OfflineCondition),
        timed=cond.timed or rule.for_ > 0 or rule.clear_for > 0 or rule.hold > 0,
        # a rule of pseudo metrics only ($quality) is evaluated on every reading; one that also names a
        # point is evaluated when a reading carries that point, so `$ts` is the time of *that* reading:
        # the box clock (polled every 30 s) is compared with the agent's time of the same poll, not with
        # a later reading's (which made the measured skew drift by up to one poll period)
        always=bool(metrics) and all(m in PSEUDO_METRICS for m in metrics),
        keep=frozenset(
            metrics
            | (metrics_of(rule.value) if isinstance(rule.value, Expr) else {rule.value} if rule.value else set())
            | set(template.names)
            | set(template_zh.names if template_zh is not None else ())
            | set(clear_template.names if clear_template is not None else ())
        ),
    )


@dataclass(frozen=True, slots=True)
class RuleSet:
    """An immutable, compiled set of rules; engines swap whole sets on reload."""

    rules: tuple[CompiledRule, ...] = ()
    files: tuple[str, ...] = ()
    _by_id: dict[str, CompiledRule] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, rules: Iterable[tuple[Rule, Source]], files: Sequence[str] = ()) -> RuleSet:
        compiled = tuple(compile_rule(rule, source) for rule, source in rules)
        return cls(compiled, tuple(files), {c.id: c for c in compiled})

    def get(self, rule_id: str) -> CompiledRule | None:
        return self._by_id.get(rule_id)

    def __len__(self) -> int:
        return len(self.rules)

    def __contains__(self, rule_id: object) -> bool:
        return rule_id in self._by_id

    def for_device(self, device: str, kind: str, profile: str | None = None) -> list[CompiledRule]:
        return [c for c in self.rules if c.applies(device, kind, profile)]

    def kinds(self) -> set[str]:
        return {k for c in self.rules for k in c.rule.kinds}


def rule_files(paths: Iterable[str | Path]) -> list[Path]:
    """Expand directories to their ``*.yaml``/``*.yml`` files (sorted); keep files as given."""
    out: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            out.extend(sorted(x for x in p.iterdir() if x.suffix in (".yaml", ".yml") and x.is_file()))
        else:
            out.append(p)
    return out


def parse_rule_file(text: str, source: str) -> list[tuple[Rule, Source]]:
    """Validate one file's text; raise :class:`ConfigError` with every issue in it."""
    data, lines = load_yaml(text, source)
    doc = parse_model(RuleFile, data, source, lines)
    return [
        (rule, Source(source, lines.get(("rules", i, "id"), lines.get(("rules", i)))))
        for i, rule in enumerate(doc.rules)
    ]


def load_ruleset(paths: Iterable[str | Path], *, builtin: bool = False) -> RuleSet:
    """Load and validate rule files (or directories of them) into one :class:`RuleSet`.

    With ``builtin=True`` the shipped library comes first, so a site file can add rules next to
    it (a site rule reusing a library id is reported as a duplicate, not silently overriding).
    Every problem in every file is collected before raising one :class:`ConfigError`.
    """
    files = ([*rule_files([LIBRARY])] if builtin else []) + rule_files(paths)
    issues: list[ConfigIssue] = []
    loaded: list[tuple[Rule, Source]] = []
    seen: dict[str, Source] = {}
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            issues.append(ConfigIssue(str(path), None, "", f"cannot read rule file: {exc.strerror}"))
            continue
        try:
            entries = parse_rule_file(text, str(path))
        except ConfigError as exc:
            issues.extend(exc.issues)
            continue
        for index, (rule, source) in enumerate(entries):
            first = seen.get(rule.id)
            if first is not None:
                issues.append(
                    ConfigIssue(
                        source.file,
                        source.line,
                        f"rules.{index}.id",
                        f"duplicate rule id {rule.id!r} (first defined at {first})",
                    )
                )
                continue
            seen[rule.id] = source
            loaded.append((rule, source))
    if issues:
        raise ConfigError(issues)
    return RuleSet.of(loaded, [str(p) for p in files])


def builtin_rulesets() -> RuleSet:
    """The default rules shipped in ``rules/library/*.yaml`` for meters, pumps, elevators, gates."""
    return load_ruleset([LIBRARY])


def describe(ruleset: RuleSet) -> list[dict[str, Any]]:
    """A plain summary per rule (for ``guanjia rules list`` and the cloud's rule catalogue)."""
    return [
        {
            "id": c.id,
            "severity": c.rule.severity,
            "kinds": list(c.rule.kinds),
            "condition": c.rule.condition_type,
            "work_order": c.rule.work_order,
            "priority": c.rule.priority,
            "metrics": sorted(c.metrics),
            "source": str(c.source),
        }
        for c in ruleset.rules
    ]
