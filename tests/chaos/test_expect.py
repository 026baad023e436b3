"""The chaos suite's expectations as pure logic: exact work-order counts and the edge's alarm state."""

from __future__ import annotations

from pathlib import Path

import orjson

from bench.chaos.expect import Tickets, edge_active_alarms
from bench.chaos.scenarios import SCENARIOS


def test_spurious_and_missing_work_orders_are_counted_per_rule() -> None:
    expected = {"elevator-passengers-trapped": 1}
    exact = Tickets(work_orders={"elevator-passengers-trapped": 1})
    assert (exact.spurious(expected), exact.missing(expected)) == (0, 0)
    ghosts = Tickets(work_orders={"elevator-passengers-trapped": 2, "pump-offline": 1, "gateway_offline": 1},
                     notifications={"pump-offline": 2, "elevator-passengers-trapped": 3})
    assert ghosts.spurious(expected) == 3  # a second entrapment ticket, and two that nobody asked for
    assert ghosts.missing(expected) == 0
    assert ghosts.spurious_notifications(expected) == 2  # only those about unexpected alarms
    assert Tickets().missing({"gateway_offline": 1}) == 1


def test_edge_alarm_state_read_from_the_rules_snapshot(tmp_path: Path) -> None:
    path = tmp_path / "rules-state.json"
    assert edge_active_alarms(path) is None
    path.write_bytes(orjson.dumps({"format": 1, "devices": {
        "b1-pump-1": {"rules": {"pump-offline": {"active": False}, "pump-dry-run": {"active": True}}},
        "b1-lift-1": {"rules": {"elevator-offline": {"active": True}}}}}))
    assert edge_active_alarms(path) == {("b1-pump-1", "pump-dry-run"), ("b1-lift-1", "elevator-offline")}


def test_every_scenario_declares_its_work_orders_once() -> None:
    names = [s.name for s in SCENARIOS]
    assert len(names) == len(set(names))
    assert len(SCENARIOS) >= 15
    for s in SCENARIOS:
        assert all(n > 0 for n in s.work_orders.values()), s.name
        if s.fault is not None:
            assert s.work_orders.get(s.fault.rule) == 1, s.name
