"""Local and fleet alarm rules: a small YAML rule language and a pure, incremental evaluator.

Used by the edge agent on each device stream and by the cloud on the ingested stream and on
rollups. See ``docs/rules.md`` for the language.

    ruleset = load_ruleset(["site-rules/"], builtin=True)
    engine = RuleEngine(ruleset)
    events = engine.process("pump-1", "pump", ts_ms, {"outlet_pressure_bar": 1.2})
    events += engine.tick(now_ms)
"""

from __future__ import annotations

from rules.engine import AlarmEvent, RuleEngine
from rules.errors import RuleError
from rules.ruleset import LIBRARY, CompiledRule, RuleSet, builtin_rulesets, load_ruleset
from rules.watcher import RuleWatcher

__all__ = [
    "LIBRARY",
    "AlarmEvent",
    "CompiledRule",
    "RuleEngine",
    "RuleError",
    "RuleSet",
    "RuleWatcher",
    "builtin_rulesets",
    "load_ruleset",
]
