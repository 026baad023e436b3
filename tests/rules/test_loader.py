"""Rule files: every mistake is reported as file:line: field: message; the library is sound."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from guanjia.core.errors import ConfigError
from rules import builtin_rulesets, load_ruleset
from rules.engine import RuleEngine
from rules.model import KINDS
from rules.profiles import check_against_profiles
from tests.support.rules import T0, engine, rule


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def issues(paths: list[Path]) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_ruleset(paths)
    return [str(i) for i in info.value.issues]


BROKEN = """\
rules:
  - id: ok-rule
    severity: major
    kinds: [pump]
    message: "fine"
    threshold: {metric: p, above: 1}
  - id: bad rule
    severity: urgent
    kinds: [boiler]
    message: "{device.__class__}"
    for: 10q
    threshold: {metric: p, above: 1, clear_above: 3}
  - id: two-conditions
    severity: minor
    kinds: [gate]
    message: m
    state: {metric: a, eq: 1}
    offline: {after: 1m}
  - id: bad-predicate
    severity: minor
    kinds: [gate]
    message: m
    state:
      all:
        - {metric: a, equals: 1}
        - {metric: {median: [a, b]}, above: 1}
"""


def test_broken_file_reports_file_line_field(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", BROKEN)
    found = issues([path])
    assert f"{path}:7: rules.1.id: Value error, a rule id is 1-64 of letters" in found[0]
    joined = "\n".join(found)
    assert f"{path}:8: rules.1.severity: Input should be 'critical'" in joined
    assert f"{path}:9: rules.1.kinds.0: Input should be" in joined
    assert f"{path}:10: rules.1.message: Value error, template field {{device.__class__}}" in joined
    assert f"{path}:11: rules.1.for: Value error, '10q' is not a duration" in joined
    assert f"{path}:12: rules.1.threshold: Value error, clear_above goes with below" in joined
    assert f"{path}:13: rules.2: Value error, a rule needs exactly one condition" in joined
    assert f"{path}:25: rules.3.state.all.0.equals: unknown field" in joined
    assert f"{path}:26: rules.3.state.all.1.metric.median: unknown field" in joined


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    path = write(tmp_path, "syntax.yaml", "rules:\n  - id: x\n    message: [unclosed\n")
    [line] = issues([path])
    assert line.startswith(f"{path}:")
    assert "YAML syntax" in line


def test_duplicate_ids_across_files_name_both_places(tmp_path: Path) -> None:
    one = "rules:\n  - {id: same, severity: info, kinds: [pump], message: m, state: {metric: a, eq: 1}}\n"
    a = write(tmp_path, "a.yaml", one)
    b = write(tmp_path, "b.yaml", "# another file\n" + one)
    [line] = issues([tmp_path])
    assert line == f"{b}:3: rules.0.id: duplicate rule id 'same' (first defined at {a}:2)"


def test_errors_from_all_files_at_once(tmp_path: Path) -> None:
    write(
        tmp_path,
        "a.yaml",
        "rules:\n  - {id: a, severity: nope, kinds: [pump], message: m, state: {metric: a, eq: 1}}\n",
    )
    write(tmp_path, "b.yaml", "rules: 5\n")
    found = issues([tmp_path])
    assert len(found) == 2


def test_builtin_library_loads_and_matches_profiles() -> None:
    from device_profiles.loader import builtin_profiles

    rs = builtin_rulesets()
    assert rs.kinds() == set(KINDS)
    assert check_against_profiles(rs, builtin_profiles().values()) == []
    for kind in KINDS:
        applicable = rs.for_device(f"{kind}-1", kind)
        assert applicable, kind
        assert all(kind in c.rule.kinds for c in applicable)
        assert any(c.rule.condition_type == "offline" for c in applicable), f"{kind} needs an offline rule"


def test_every_builtin_rule_has_a_chinese_and_english_title() -> None:
    """Pages name an alarm by its rule's title in the reader's language (the edge's message is English)."""
    untitled = [c.id for c in builtin_rulesets().rules if c.rule.title is None]
    assert untitled == []


def test_every_builtin_rule_has_its_message_in_chinese_with_the_same_fields() -> None:
    """Alarm texts exist in Chinese and English (issue 18): the Chinese template names exactly the
    fields of the English one, so it renders wherever the English one does."""
    for compiled in builtin_rulesets().rules:
        assert compiled.template_zh is not None, compiled.id
        assert set(compiled.template_zh.names) == set(compiled.template.names), compiled.id


def test_the_chinese_message_travels_as_a_label_on_raise_and_clear() -> None:
    eng = engine(rule("threshold: {metric: p, above: 5}", extra='message_zh: "{device}：压力 {value}"'))
    raised = eng.process("d", "pump", T0, {"p": 7})
    assert raised[0].labels["message_zh"] == f"d：压力 {raised[0].message.split(': ')[1]}"
    cleared = eng.process("d", "pump", T0 + 1000, {"p": 1})
    assert cleared[0].labels["message_zh"].startswith("已恢复：d：压力")


def test_every_builtin_rule_applies_to_its_kinds_only() -> None:
    rs = builtin_rulesets()
    eng = RuleEngine(rs)
    for kind in KINDS:
        eng.watch(f"{kind}-1", kind, T0)
    snap = eng.snapshot()["devices"]
    for c in rs.rules:
        for kind in KINDS:
            expected = kind in c.rule.kinds and c.rule.profiles is None
            assert (c.id in snap[f"{kind}-1"]["rules"]) == expected, (c.id, kind)


def test_profile_check_catches_unknown_metric_and_label(tmp_path: Path) -> None:
    from device_profiles.loader import builtin_profiles

    path = write(
        tmp_path,
        "site.yaml",
        "rules:\n"
        "  - id: typo\n    severity: info\n    kinds: [elevator]\n    message: '{flor}'\n"
        "    state: {all: [{metric: door_stat, eq: open}, {metric: door_state, eq: ajar},\n"
        "                  {metric: alarm_word, bit: 15}]}\n",
    )
    found = [str(i) for i in check_against_profiles(load_ruleset([path]), builtin_profiles().values())]
    assert any("metric 'door_stat' is not a point of any elevator profile" in i for i in found)
    assert any("'ajar' is not a value of door_state" in i for i in found)
    assert any("bit 15 of alarm_word is not named" in i for i in found)
    assert any("template field {flor}" in i for i in found)
    assert all(i.startswith(f"{path}:2: typo.") for i in found)


def test_cli_check(tmp_path: Path) -> None:
    from guanjia.app.cli.main import app

    runner = CliRunner()
    result = runner.invoke(app, ["rules", "check", "--profiles"])
    assert result.exit_code == 0, result.output
    assert "rules match the" in result.output
    bad = write(tmp_path, "bad.yaml", BROKEN)
    result = runner.invoke(app, ["rules", "check", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:8: rules.1.severity:" in result.output


def test_cli_check_exit_code_and_output_via_main(tmp_path: Path) -> None:
    import subprocess
    import sys

    bad = write(tmp_path, "bad.yaml", BROKEN)
    proc = subprocess.run(
        [sys.executable, "-c", "from guanjia.app.cli.main import main; main()", "rules", "check", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    assert f"{bad}:8: rules.1.severity:" in proc.stderr


def test_cli_replay(tmp_path: Path) -> None:
    import orjson

    from guanjia.app.cli.main import app

    lines = [
        {
            "device": "p1",
            "kind": "pump",
            "ts": T0 + i * 1000,
            "profile": "vfd-pump",
            "values": {"running": True, "frequency": 48.0, "suction_pressure": 0.05, "flow": 0.0, "pump_alarms": 0},
        }
        for i in range(30)
    ]
    path = tmp_path / "readings.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(x) for x in lines) + b"\nnot json\n")
    result = CliRunner().invoke(app, ["rules", "replay", str(path)])
    assert result.exit_code == 0, result.output
    events = [orjson.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [(e["rule"], e["state"]) for e in events] == [("pump-dry-run", "raise")]
    assert events[0]["ts"] == T0 + 10_000
