"""The chaos suite's expectations as pure logic: exact work-order counts and the edge's alarm state."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import orjson

from bench.chaos.expect import Tickets, compare_alarm_states, edge_active_alarms, outbox_alarms
from bench.chaos.harness import Stack
from bench.chaos.scenarios import SCENARIOS
from edge.outbox import Outbox


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


def _alarm(device: str, rule: str, state: str, ts: int) -> dict[str, Any]:
    return {"device": device, "rule": rule, "state": state, "ts": ts, "severity": "major", "message": "m"}


async def test_alarm_events_still_in_the_outbox_are_read_in_order(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    assert outbox_alarms(path) == {}
    async with Outbox(path, gateway="gw") as box:
        box.add_alarm(_alarm("b1-lift-2", "elevator-offline", "raise", 1))
        box.add_alarm(_alarm("b1-pump-1", "pump-offline", "clear", 2))
        await box.flush()
        box.add_alarm(_alarm("b1-lift-2", "elevator-offline", "clear", 3))
        await box.flush()
    assert outbox_alarms(path) == {("b1-lift-2", "elevator-offline"): "raise", ("b1-pump-1", "pump-offline"): "clear"}


class _Cloud:
    """The one query compare_alarm_states makes: the cloud's active edge alarms."""

    def __init__(self, active: set[tuple[str, str]]) -> None:
        self.active = active

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        return sorted(self.active)


async def test_an_alarm_raised_as_the_agent_stopped_is_in_flight_not_unseen(tmp_path: Path) -> None:
    """Issue 24 (noisy_bus, run 4): a neighbour declared offline once the simulators were stopped,
    its raise committed by the agent's shutdown but never sent. In flight, not a mismatch; anything
    else that disagrees still is, after the deadline."""
    state = tmp_path / "rules-state.json"
    state.write_bytes(orjson.dumps({"format": 1, "devices": {
        "b1-meter-1": {"rules": {"meter-offline": {"active": True}}},
        "b1-lift-2": {"rules": {"elevator-offline": {"active": True}}}}}))
    outbox = tmp_path / "outbox.db"
    async with Outbox(outbox, gateway="gw") as box:
        box.add_alarm(_alarm("b1-lift-2", "elevator-offline", "raise", 1))
        await box.flush()
    cloud = _Cloud({("b1-meter-1", "meter-offline")})
    states = compare_alarm_states(cast(Stack, cloud), "c", state, outbox, timeout=0)
    assert (states.ghosts, states.unseen, states.mismatches) == ([], [], 0)
    assert states.in_flight == [("b1-lift-2", "elevator-offline")]
    cloud.active.add(("b1-lift-2", "elevator-offline"))  # delivered, its confirmation not back yet
    assert compare_alarm_states(cast(Stack, cloud), "c", state, outbox, timeout=0).mismatches == 0
    cloud.active = {("b1-lift-2", "elevator-offline"), ("b1-pump-1", "pump-offline")}
    states = compare_alarm_states(cast(Stack, cloud), "c", state, outbox, timeout=0)
    assert (states.ghosts, states.unseen) == ([("b1-pump-1", "pump-offline")], [("b1-meter-1", "meter-offline")])
    # without the outbox (as before) the same shutdown race is an unseen alarm
    cloud.active = {("b1-meter-1", "meter-offline")}
    assert compare_alarm_states(cast(Stack, cloud), "c", state, timeout=0).unseen == [("b1-lift-2", "elevator-offline")]
