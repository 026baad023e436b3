"""The cloud's entry point: decoded wire telemetry batches through the engine."""

from __future__ import annotations

from guanjia.core.wire import decode, encode
from rules import RuleEngine, builtin_rulesets
from rules.stream import StreamEvaluator
from tests.support.rules import T0, states


def test_wire_batches_raise_fleet_alarms() -> None:
    directory = {"b1-pump-1": ("pump", "vfd-pump")}
    evaluator = StreamEvaluator(RuleEngine(builtin_rulesets(), stale_after_ms=None), directory.get)
    readings = [
        {
            "device": "b1-pump-1",
            "ts": T0 + i * 1000,
            "quality": "good",
            "values": {"running": True, "frequency": 48.0, "suction_pressure": 0.05, "flow": 0.0},
        }
        for i in range(12)
    ]
    readings.append({"device": "unknown-1", "ts": T0, "values": {"x": 1}})
    payload = encode("telemetry", gateway="gw-1", community="c1", seq=7, sent_at=T0, items=readings)
    events = evaluator.readings(decode(payload).items)
    assert states(events) == [("pump-dry-run", "raise")]
    assert evaluator.unknown_devices == 1
    # the pump goes silent: the offline rule fires from ticks alone
    assert states(evaluator.tick(T0 + 12_000 + 60_000)) == [("pump-offline", "raise")]
