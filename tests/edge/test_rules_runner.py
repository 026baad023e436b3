"""The agent's rule adapter: hot reload keeps old rules on a bad file, state snapshot is atomic JSON."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from edge.config import RulesConfig
from edge.rules_runner import RuleRunner
from guanjia.core.wire import Quality

RULE = """\
version: 1
rules:
  - id: {id}
    severity: minor
    kinds: [pump]
    message: "{{device}} low"
    threshold: {{metric: outlet_pressure_bar, below: 2.0, clear_above: 2.5}}
"""


def test_reload_swaps_rules_and_keeps_them_on_error(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    rule_file = rules_dir / "site.yaml"
    rule_file.write_text(RULE.format(id="low-a"))
    alarms: list[dict[str, Any]] = []
    clock = [1_000_000]
    runner = RuleRunner(RulesConfig(builtin=False, paths=[rules_dir], state_path=tmp_path / "s.json"),
                        alarms.append, lambda: clock[0])
    runner.load({"p1": ("pump", "vfd-pump")})
    runner.process("p1", "pump", "vfd-pump", clock[0], {"outlet_pressure_bar": 1.0},
                   {"outlet_pressure_bar": Quality.GOOD})
    assert [(a["rule"], a["state"]) for a in alarms] == [("low-a", "raise")]
    assert runner.watcher is not None
    # a broken edit is refused: old rules (and the active alarm) stay
    rule_file.write_text("version: 1\nrules:\n  - id: low-a\n    severity: nope\n")
    os.utime(rule_file, ns=(1, 1))
    assert runner.watcher.poll() is False
    assert runner.stats()["reload_errors"] == 1
    assert runner.stats()["active"] == 1
    # a valid edit that removes the rule clears its alarm
    rule_file.write_text(RULE.format(id="low-b"))
    os.utime(rule_file, ns=(2, 2))
    assert runner.watcher.poll() is True
    assert ("low-a", "clear") in [(a["rule"], a["state"]) for a in alarms]
    runner.snapshot()
    assert (tmp_path / "s.json").exists()
    assert not (tmp_path / "s.json.tmp").exists()
