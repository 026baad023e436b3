"""Semantics of each condition type and of the alarm state machine, on synthetic streams."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.rules import T0, engine, rule, states

THRESHOLD = rule(
    """
    threshold: {metric: p, below: 2.0, clear_above: 2.3}
    """
)


def test_threshold_hysteresis_no_chatter() -> None:
    eng = engine(THRESHOLD)
    out = []
    # hovering just under/over the trigger: one raise, no clear until above 2.3
    for i, v in enumerate([2.5, 1.9, 2.1, 1.95, 2.2, 2.05, 2.29, 2.31, 1.99, 2.2]):
        out += eng.process("p1", "pump", T0 + i * 1000, {"p": v})
    assert states(out) == [("r1", "raise"), ("r1", "clear"), ("r1", "raise")]
    assert out[0].ts == T0 + 1000
    assert out[1].ts == T0 + 7000
    assert out[0].value == 1.9


@given(st.lists(st.floats(min_value=1.95, max_value=2.25), min_size=1, max_size=200))
@settings(max_examples=60, deadline=None)
def test_threshold_noise_inside_band_raises_at_most_once(noise: list[float]) -> None:
    eng = engine(THRESHOLD)
    out = []
    for i, v in enumerate(noise):
        out += eng.process("p1", "pump", T0 + i * 1000, {"p": v})
    assert len(out) <= 1
    assert all(e.state == "raise" for e in out)


@given(st.lists(st.floats(min_value=0, max_value=5), max_size=300))
@settings(max_examples=60, deadline=None)
def test_raise_and_clear_alternate(values: list[float]) -> None:
    eng = engine(THRESHOLD.replace("threshold", "for: 2s\n    clear_for: 1s\n    threshold"))
    out = []
    for i, v in enumerate(values):
        out += eng.process("p1", "pump", T0 + i * 1000, {"p": v})
        out += eng.tick(T0 + i * 1000 + 500)
    expected = ["raise", "clear"] * len(out)
    assert [e.state for e in out] == expected[: len(out)]


def test_for_duration_fires_only_after_duration() -> None:
    eng = engine(rule("for: 30s\nthreshold: {metric: p, above: 10}"))
    assert eng.process("d", "pump", T0, {"p": 11}) == []
    assert eng.tick(T0 + 29_999) == []
    assert eng.process("d", "pump", T0 + 15_000, {"p": 12}) == []
    out = eng.tick(T0 + 30_000)
    assert states(out) == [("r1", "raise")]
    assert out[0].ts == T0 + 30_000
    assert out[0].value == 12
    assert eng.tick(T0 + 40_000) == []  # raise once


def test_for_duration_restarts_when_condition_breaks() -> None:
    eng = engine(rule("for: 30s\nthreshold: {metric: p, above: 10}"))
    eng.process("d", "pump", T0, {"p": 11})
    eng.process("d", "pump", T0 + 20_000, {"p": 9})
    eng.process("d", "pump", T0 + 25_000, {"p": 11})
    assert eng.tick(T0 + 50_000) == []
    assert states(eng.tick(T0 + 55_000)) == [("r1", "raise")]


def test_clear_for_and_hold() -> None:
    eng = engine(rule("clear_for: 10s\nhold: 60s\nthreshold: {metric: p, above: 10}"))
    assert states(eng.process("d", "pump", T0, {"p": 11})) == [("r1", "raise")]
    assert eng.process("d", "pump", T0 + 1000, {"p": 5}) == []
    assert eng.tick(T0 + 30_000) == []  # clear_for met but hold not
    out = eng.tick(T0 + 60_000)
    assert states(out) == [("r1", "clear")]
    assert out[0].message.startswith("cleared: d:")


def test_unknown_value_neither_raises_nor_clears() -> None:
    eng = engine(THRESHOLD)
    assert states(eng.process("d", "pump", T0, {"p": 1.0})) == [("r1", "raise")]
    assert eng.process("d", "pump", T0 + 1000, {"p": None}) == []
    assert eng.process("d", "pump", T0 + 2000, {"p": 3.0}, quality="bad") == []
    assert eng.process("d", "pump", T0 + 3000, {"p": 3.0}, q={"p": "decode_error"}) == []
    assert states(eng.process("d", "pump", T0 + 4000, {"p": 3.0})) == [("r1", "clear")]


def test_rules_only_see_their_kinds_and_devices() -> None:
    text = rule("threshold: {metric: p, above: 1}", extra="devices: ['pump-a*']")
    eng = engine(text)
    assert eng.process("meter-1", "meter", T0, {"p": 5}) == []
    assert eng.process("pump-b1", "pump", T0, {"p": 5}) == []
    assert states(eng.process("pump-a1", "pump", T0, {"p": 5})) == [("r1", "raise")]


def test_state_predicate_all_any_not_enum_and_bits() -> None:
    text = rule(
        """
        state:
          all:
            - {metric: car_moving, eq: true}
            - any:
                - {metric: door_state, in: [open, opening]}
                - {metric: alarm_word, bit: 2}
            - not: {metric: service_mode, eq: inspection}
        """,
        kind="elevator",
    )
    eng = engine(text, enums={"elevator": {"door_state": {0: "closed", 1: "open", 2: "opening"}}})
    assert (
        eng.process(
            "e", "elevator", T0, {"car_moving": True, "door_state": 0, "alarm_word": 0, "service_mode": "normal"}
        )
        == []
    )
    # enum code 1 is translated to its label "open" before the rule sees it
    assert states(eng.process("e", "elevator", T0 + 1000, {"door_state": 1})) == [("r1", "raise")]
    assert states(eng.process("e", "elevator", T0 + 2000, {"door_state": 0})) == [("r1", "clear")]
    assert states(eng.process("e", "elevator", T0 + 3000, {"alarm_word": 0b100})) == [("r1", "raise")]
    assert states(eng.process("e", "elevator", T0 + 4000, {"service_mode": "inspection"})) == [("r1", "clear")]


def test_state_combines_metrics_from_separate_readings() -> None:
    """Report-by-exception streams carry only changes: the engine merges the latest values."""
    text = rule("state:\n  all:\n    - {metric: running, eq: true}\n    - {metric: flow, below: 0.5}", kind="pump")
    eng = engine(text)
    assert eng.process("p", "pump", T0, {"running": True}) == []
    assert states(eng.process("p", "pump", T0 + 1000, {"flow": 0.1})) == [("r1", "raise")]


def test_rate_of_change() -> None:
    text = rule("rate: {metric: p, window: 60s, per: minute, below: -1.0}")
    eng = engine(text)
    out = []
    # steady for two minutes, then falling 2 bar/min
    for i in range(120):
        out += eng.process("d", "pump", T0 + i * 1000, {"p": 5.0 + (0.01 if i % 2 else -0.01)})
    assert out == []
    for i in range(120, 180):
        out += eng.process("d", "pump", T0 + i * 1000, {"p": 5.0 - (i - 120) * 2 / 60})
    assert states(out) == [("r1", "raise")]
    assert out[0].value is not None
    assert float(out[0].value) < -1.0
    for i in range(180, 300):
        out += eng.process("d", "pump", T0 + i * 1000, {"p": 3.0})
    assert states(out) == [("r1", "raise"), ("r1", "clear")]


def test_rate_uses_bounded_memory() -> None:
    eng = engine(rule("rate: {metric: p, window: 1h, above: 100}"))
    for i in range(20_000):
        eng.process("d", "pump", T0 + i * 1000, {"p": float(i)})
    snap = eng.snapshot()
    assert len(snap["devices"]["d"]["rules"]["r1"]["st"]["b"]) <= 17


def test_stuck_value_while_moving() -> None:
    text = rule("stuck: {metric: floor, unchanged_for: 60s, while: {metric: car_moving, eq: true}}", kind="elevator")
    eng = engine(text)
    out = []
    # parked at floor 3 for 5 minutes: not moving, so not stuck
    for i in range(300):
        out += eng.process("e", "elevator", T0 + i * 1000, {"floor": 3, "car_moving": False})
    assert out == []
    # moving normally: floor changes every 3 s
    for i in range(300, 400):
        out += eng.process("e", "elevator", T0 + i * 1000, {"floor": 3 + (i - 300) // 3, "car_moving": True})
    assert out == []
    # moving, floor frozen
    for i in range(400, 461):
        out += eng.process("e", "elevator", T0 + i * 1000, {"floor": 36, "car_moving": True})
    assert states(out) == [("r1", "raise")]
    assert out[0].ts == T0 + 459_000
    out = eng.process("e", "elevator", T0 + 462_000, {"floor": 36, "car_moving": False})
    assert states(out) == [("r1", "clear")]


def test_count_edges_pattern() -> None:
    text = rule("count: {edges: {metric: door_state, eq: open}, at_least: 5, within: 60s}", kind="elevator")
    eng = engine(text)
    out = []
    t = T0
    # a door cycle every 20 s: at most 3 per minute, never fires
    for _ in range(10):
        out += eng.process("e", "elevator", t, {"door_state": "open"})
        out += eng.process("e", "elevator", t + 5000, {"door_state": "closed"})
        t += 20_000
    assert out == []
    # five cycles in 25 s
    for _ in range(5):
        out += eng.process("e", "elevator", t, {"door_state": "open"})
        out += eng.process("e", "elevator", t + 2000, {"door_state": "closed"})
        t += 5000
    assert states(out) == [("r1", "raise")]
    # quiet: the window slides and time alone clears it
    assert states(eng.tick(t + 60_000)) == [("r1", "clear")]


def test_count_counter_increase_tolerates_reset() -> None:
    text = rule("count: {increase: door_cycles, at_least: 20, within: 2m}", kind="elevator")
    eng = engine(text, stale_after_ms=None)
    out = []
    for i in range(60):  # 7.5 per minute
        out += eng.process("e", "elevator", T0 + i * 8000, {"door_cycles": 1000 + i})
    assert out == []
    out += eng.process("e", "elevator", T0 + 480_000, {"door_cycles": 1})  # counter reset: counts nothing
    assert out == []
    for i in range(10):
        out += eng.process("e", "elevator", T0 + 482_000 + i * 2000, {"door_cycles": 2 + i})
    assert states(out) == [("r1", "raise")]
    assert states(eng.tick(T0 + 500_000 + 121_000)) == [("r1", "clear")]


def test_offline_via_tick_and_quality() -> None:
    eng = engine(rule("offline: {after: 60s}"))
    eng.watch("never", "pump", T0)
    assert eng.process("d", "pump", T0, {"p": 1}) == []
    assert eng.tick(T0 + 59_000) == []
    out = eng.tick(T0 + 60_000)
    assert sorted(states(out)) == [("r1", "raise"), ("r1", "raise")]
    assert {e.device for e in out} == {"d", "never"}
    assert out[0].value == 60.0
    assert states(eng.process("d", "pump", T0 + 70_000, {"p": 1})) == [("r1", "clear")]
    # the agent reports the device offline: raise at once, no waiting, saying how long it was silent
    # (the message reads "silent 1s", not "silent n/as")
    out = eng.process("d", "pump", T0 + 71_000, {}, quality="offline")
    assert states(out) == [("r1", "raise")]
    assert out[0].value == 1.0
    assert eng.tick(T0 + 72_000) == []
    assert states(eng.process("d", "pump", T0 + 73_000, {"p": 1})) == [("r1", "clear")]


def test_heartbeat_metric_offline() -> None:
    eng = engine(rule("offline: {after: 90s, metric: heartbeat}", kind="gate"))
    eng.process("g", "gate", T0, {"heartbeat": 1})
    for i in range(1, 9):  # state changes keep coming, heartbeats do not
        eng.process("g", "gate", T0 + i * 10_000, {"door_state": "closed"})
    assert states(eng.tick(T0 + 90_000)) == [("r1", "raise")]


def test_stale_device_does_not_raise_by_time() -> None:
    eng = engine(rule("for: 5m\nthreshold: {metric: p, above: 10}"), stale_after_ms=120_000)
    eng.process("d", "pump", T0, {"p": 11})
    assert eng.tick(T0 + 400_000) == []  # last value is too old to trust
    assert states(eng.process("d", "pump", T0 + 401_000, {"p": 11})) == [("r1", "raise")]


def test_out_of_order_readings_are_skipped() -> None:
    eng = engine(THRESHOLD)
    eng.process("d", "pump", T0 + 10_000, {"p": 3})
    assert eng.process("d", "pump", T0, {"p": 1}) == []
    assert eng.stats["out_of_order"] == 1


def test_template_rendering() -> None:
    text = """
    rules:
      - id: low-pressure
        severity: major
        kinds: [pump]
        message: >-
          {device}: outlet pressure {value:.2f} bar below {threshold}
          (suction {suction_pressure}, {nope}, {flow:.1f})
        clear_message: "{device}: pressure back to {value:.1f} bar"
        work_order: true
        priority: high
        labels: {category: water}
        threshold: {metric: outlet_pressure, below: 2.0, hysteresis: 0.3}
    """
    eng = engine(text)
    [event] = eng.process("pump-7", "pump", T0, {"outlet_pressure": 1.234, "suction_pressure": 0.8, "flow": "x"})
    assert event.message == "pump-7: outlet pressure 1.23 bar below 2.0 (suction 0.8, ?, x)"
    wire = event.to_wire()
    assert wire == {
        "device": "pump-7",
        "rule": "low-pressure",
        "state": "raise",
        "severity": "major",
        "ts": T0,
        "message": event.message,
        "value": 1.234,
        "work_order": True,
        "labels": {"category": "water", "priority": "high", "condition": "threshold", "kind": "pump"},
    }
    assert eng.process("pump-7", "pump", T0 + 1, {"outlet_pressure": 2.2}) == []
    [clear] = eng.process("pump-7", "pump", T0 + 2, {"outlet_pressure": 2.31})
    assert clear.message == "pump-7: pressure back to 2.3 bar"


def test_derived_expressions() -> None:
    text = rule(
        """
        value: {min: [a, b, c]}
        state:
          all:
            - {metric: {min: [a, b, c]}, below: 50}
            - {metric: {max: [a, b, c]}, above: 180}
            - {metric: {ratio: [a, b]}, at_most: 1}
            - {metric: {spread: [a, b]}, at_least: 100}
            - {metric: {abs: {diff: [a, b]}}, above: 100}
        """,
        kind="meter",
    )
    eng = engine(text)
    assert eng.process("m", "meter", T0, {"a": 230.0, "b": 231.0, "c": 229.0}) == []
    [event] = eng.process("m", "meter", T0 + 1000, {"a": 2.0})
    assert event.value == 2.0


def test_per_point_unreachable_quality_counts_as_offline() -> None:
    """The edge sends per-point qualities; all points timing out means nothing was read."""
    eng = engine(rule("offline: {after: 60s}") + rule("threshold: {metric: p, above: 5}", id="r2")[7:])
    out = eng.process("d", "pump", T0, {"p": 9})
    assert states(out) == [("r2", "raise")]
    for i in range(1, 70):
        out += eng.process("d", "pump", T0 + i * 1000, {"p": None}, q={"p": "timeout"})
    out += eng.tick(T0 + 70_000)
    assert states(out) == [("r2", "raise"), ("r1", "raise")]
    assert out[1].ts == T0 + 60_000
    assert [a.rule for a in eng.active_alarms()] == ["r2", "r1"]  # r2 is not cleared by missing data
    out = eng.process("d", "pump", T0 + 71_000, {"p": 1}, q={"p": "good"})
    assert sorted(states(out)) == [("r1", "clear"), ("r2", "clear")]


def test_pseudo_metrics_quality_and_timestamp() -> None:
    text = (
        rule("state: {metric: $quality, eq: clock_skew}", kind="gate")
        + rule("threshold: {metric: {abs: {diff: [clock, $ts]}}, above: 120}", id="r2", kind="gate")[7:]
        # clock_skew values are still usable by other rules
        + rule("state: {metric: door, eq: 1}", id="r3", kind="gate")[7:]
    )
    eng = engine(text)
    values = {"door": 1, "clock": T0 / 1000 + 500}
    out = eng.process("g", "gate", T0, values, q=dict.fromkeys(values, "clock_skew"))
    assert sorted(states(out)) == [("r1", "raise"), ("r2", "raise"), ("r3", "raise")]


def test_alarm_events_pass_the_wire_contract() -> None:
    from guanjia.core.wire import decode, encode
    from rules.engine import AlarmEvent

    eng = engine(rule("state: {metric: code, ne: none}", kind="pump"))
    events = eng.process("pump-1", "pump", T0, {"code": "x" * 400})
    events += eng.process("pump-1", "pump", T0 + 1, {"code": float("nan")})
    events += eng.process("pump-1", "pump", T0 + 2, {"code": "none"})
    assert states(events) == [("r1", "raise"), ("r1", "clear")]
    payload = encode("alarms", gateway="gw-1", community="c-1", seq=1, sent_at=T0, items=[e.to_wire() for e in events])
    envelope = decode(payload)
    assert [AlarmEvent.from_wire(item) for item in envelope.items] == events
    assert len(str(events[0].value)) == 256


def test_a_counter_that_comes_back_with_its_lifetime_count_is_not_a_burst() -> None:
    """A lift box restarted with its lifetime door count (lower than the last one seen) is a reset,
    not 900,000 door cycles in two minutes."""
    eng = engine(rule("count: {increase: door_cycles, at_least: 20, within: 2m}", kind="elevator"),
                 stale_after_ms=None)
    assert eng.process("e", "elevator", T0, {"door_cycles": 1_000_000}) == []
    assert eng.process("e", "elevator", T0 + 8_000, {"door_cycles": 908_086}) == []
    assert eng.process("e", "elevator", T0 + 16_000, {"door_cycles": 908_090}) == []
    assert eng.tick(T0 + 20_000) == []
