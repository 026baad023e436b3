"""State survives snapshot/restore (as after an agent restart) and rule reloads."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rules.engine import RuleEngine
from rules.errors import RuleError
from tests.support.rules import T0, engine, rule, ruleset, states

FOR_RULE = rule("for: 10m\nthreshold: {metric: p, above: 10, hysteresis: 1}")


def roundtrip(eng: RuleEngine, text: str | None = None) -> RuleEngine:
    data = orjson.loads(orjson.dumps(eng.snapshot()))  # must be plain JSON
    return RuleEngine.restore(ruleset(text) if text is not None else eng.ruleset, data)


def test_for_duration_survives_restart_mid_duration() -> None:
    eng = engine(FOR_RULE)
    eng.process("d", "pump", T0, {"p": 11})
    eng.tick(T0 + 4 * 60_000)
    again = roundtrip(eng)
    assert again.tick(T0 + 9 * 60_000) == []
    assert again.process("d", "pump", T0 + 9 * 60_000 + 30_000, {"p": 11}) == []
    assert states(again.tick(T0 + 10 * 60_000)) == [("r1", "raise")]


def test_active_alarm_survives_restart_without_duplicate_raise() -> None:
    eng = engine(FOR_RULE)
    eng.process("d", "pump", T0, {"p": 11})
    eng.process("d", "pump", T0 + 590_000, {"p": 11})
    assert states(eng.tick(T0 + 600_000)) == [("r1", "raise")]
    again = roundtrip(eng)
    assert again.process("d", "pump", T0 + 601_000, {"p": 12}) == []
    assert [e.state for e in again.active_alarms()] == ["raise"]
    assert states(again.process("d", "pump", T0 + 602_000, {"p": 8})) == [("r1", "clear")]


def test_every_condition_type_snapshots_to_json() -> None:
    text = """
    rules:
      - {id: a, severity: info, kinds: [pump], message: m, threshold: {metric: p, above: 1}}
      - {id: b, severity: info, kinds: [pump], message: m, rate: {metric: p, window: 1m, above: 1}}
      - {id: c, severity: info, kinds: [pump], message: m, stuck: {metric: p, unchanged_for: 1m}}
      - {id: d, severity: info, kinds: [pump], message: m,
         count: {edges: {metric: p, above: 3}, at_least: 2, within: 1m}}
      - {id: e, severity: info, kinds: [pump], message: m, count: {increase: n, at_least: 5, within: 1m}}
      - {id: f, severity: info, kinds: [pump], message: m, state: {metric: p, above: 2}}
      - {id: g, severity: info, kinds: [pump], message: m, offline: {after: 1m}}
      - {id: h, severity: info, kinds: [pump], message: m, baseline: {metric: n, above_pct: 10, aggregate: increase}}
    """
    eng = engine(text)
    for i in range(200):
        eng.process("x", "pump", T0 + i * 30_000, {"p": float(i % 7), "n": i})
    snap = eng.snapshot()
    again = roundtrip(eng)
    assert again.snapshot() == orjson.loads(orjson.dumps(snap))


def test_restore_rejects_unknown_format() -> None:
    with pytest.raises(RuleError):
        RuleEngine.restore(ruleset(FOR_RULE), {"format": "something/9"})


def test_reload_keeps_state_of_unchanged_rules_and_clears_removed_ones() -> None:
    two = FOR_RULE + rule("threshold: {metric: q, above: 1}", id="r2").removeprefix("rules:\n")
    eng = engine(two)
    eng.process("d", "pump", T0, {"p": 11, "q": 5})  # r2 raises; r1 pending
    # r1 only changes its message: state kept, so the pending 10 minutes still count
    changed = two.replace('message: "{device}: {value}"', 'message: "{device} now {value}"', 1)
    changed = changed.replace("  - id: r2", "  - id: r3")
    out = eng.reload(ruleset(changed), T0 + 60_000)
    assert states(out) == [("r2", "clear")]
    eng.process("d", "pump", T0 + 590_000, {"p": 11, "q": 5})
    assert states(eng.tick(T0 + 600_000)) == [("r1", "raise")]
    assert eng.tick(T0 + 600_000 + 1000) == []


def test_reload_of_changed_condition_keeps_active_alarm() -> None:
    eng = engine(rule("threshold: {metric: p, above: 10}"))
    eng.process("d", "pump", T0, {"p": 11})
    assert eng.reload(ruleset(rule("threshold: {metric: p, above: 20}")), T0 + 1) == []
    assert [a.rule for a in eng.active_alarms()] == ["r1"]
    # the new condition says false: the kept alarm clears (once)
    assert states(eng.process("d", "pump", T0 + 2, {"p": 11})) == [("r1", "clear")]


def test_device_changing_kind_clears_rules_that_no_longer_apply() -> None:
    eng = engine(rule("threshold: {metric: p, above: 10}"))
    eng.process("d", "pump", T0, {"p": 11})
    assert eng.process("d", "meter", T0 + 1, {"p": 11}) == []
    assert states(eng.tick(T0 + 2)) == [("r1", "clear")]


MIXED = """
rules:
  - {id: t, severity: info, kinds: [pump], message: m, for: 3s, clear_for: 2s,
     threshold: {metric: p, above: 5, hysteresis: 1}}
  - {id: r, severity: info, kinds: [pump], message: m, rate: {metric: p, window: 20s, above: 0.2, per: second}}
  - {id: s, severity: info, kinds: [pump], message: m, stuck: {metric: p, unchanged_for: 5s}}
  - {id: c, severity: info, kinds: [pump], message: m, count: {edges: {metric: p, above: 7}, at_least: 3, within: 30s}}
  - {id: o, severity: info, kinds: [pump], message: m, offline: {after: 4s}}
"""


@given(
    st.lists(st.one_of(st.none(), st.integers(min_value=0, max_value=9)), min_size=2, max_size=80),
    st.integers(min_value=1, max_value=79),
)
@settings(max_examples=80, deadline=None)
def test_restart_anywhere_gives_the_same_alarms(stream: list[int | None], cut: int) -> None:
    """Snapshot + restore at any point yields exactly the events of an uninterrupted run."""

    def feed(eng: RuleEngine, items: list[tuple[int, int | None]]) -> list[tuple[str, str, int]]:
        out = []
        for i, v in items:
            ts = T0 + i * 1000
            if v is not None:
                out += eng.process("d", "pump", ts, {"p": v})
            out += eng.tick(ts + 500)
        return [(e.rule, e.state, e.ts) for e in out]

    items = list(enumerate(stream))
    cut = min(cut, len(items))
    straight = feed(engine(MIXED), items)
    first = engine(MIXED)
    before = feed(first, items[:cut])
    after = feed(roundtrip(first), items[cut:])
    assert before + after == straight


def test_an_agent_restart_gap_is_not_the_devices_silence() -> None:
    """Snapshot, five minutes down, restore: a device heard 10 s before the stop gets the rest of its
    60 s before it is called offline; one already silent past it stays raised (no clear, no re-raise)."""
    eng = engine(rule("offline: {after: 60s}"))
    eng.process("quiet", "pump", T0, {"p": 1})
    eng.process("fine", "pump", T0 + 90_000, {"p": 1})
    assert states(eng.tick(T0 + 100_000)) == [("r1", "raise")]   # quiet: silent 100 s
    data = orjson.loads(orjson.dumps(eng.snapshot()))
    again = RuleEngine.restore(eng.ruleset, data, now_ms=T0 + 400_000)
    assert again.tick(T0 + 400_000) == []
    assert again.tick(T0 + 449_000) == []
    out = again.tick(T0 + 450_000)   # 10 s before the stop + 50 s after it
    assert states(out) == [("r1", "raise")]
    assert out[0].device == "fine"
    assert out[0].value == 60.0
    assert sorted(a.device for a in again.active_alarms()) == ["fine", "quiet"]
