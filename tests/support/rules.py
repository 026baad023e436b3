"""Build small rule sets from YAML text for the pure-logic tests."""

from __future__ import annotations

import textwrap
from typing import Any

from rules.engine import AlarmEvent, RuleEngine
from rules.ruleset import RuleSet, parse_rule_file

T0 = 1_750_000_000_000  # a fixed epoch ms; tests never read the wall clock


def ruleset(yaml_text: str) -> RuleSet:
    return RuleSet.of(parse_rule_file(textwrap.dedent(yaml_text), "test.yaml"))


def engine(yaml_text: str, **kwargs: Any) -> RuleEngine:
    return RuleEngine(ruleset(yaml_text), **kwargs)


def states(events: list[AlarmEvent]) -> list[tuple[str, str]]:
    return [(e.rule, e.state) for e in events]


def rule(body: str, *, id: str = "r1", kind: str = "pump", extra: str = "") -> str:
    """One rule with the common fields filled in; ``body`` is the condition and timing part."""
    lines = [
        "rules:",
        f"  - id: {id}",
        "    severity: major",
        f"    kinds: [{kind}]",
        '    message: "{device}: {value}"',
    ]
    lines += ["    " + line for line in textwrap.dedent(body).strip().splitlines()]
    lines += ["    " + line for line in textwrap.dedent(extra).strip().splitlines() if line]
    return "\n".join(lines) + "\n"
