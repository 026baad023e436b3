"""Commands raised by rules: a rule's ``command:`` travels with its alarm (the ``command`` label the
edge's compiled rule adds) and the cloud's ``rule-commands`` component sends it through the same
checked, audited path as an engineer's (``device_commands``, issued by ``rule:<id>``), at most once
per alarm episode: the alarm raised again, or cleared and raised within the flap window, sends
nothing more; a command the profile does not allow is audited as rejected."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import psycopg
import pytest
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.automation.rule_commands import RuleCommands
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import Policy
from cloud.registry import store
from guanjia.core.clock import ManualClock, to_ms
from guanjia.core.errors import ConfigError
from rules.ruleset import load_ruleset

RULES = """\
version: 1
rules:
  - id: pump-fault-reset
    title: {zh: "变频器故障（自动复位一次）", en: "Drive fault (reset once)"}
    severity: major
    kinds: [pump]
    message: "{device}: drive fault"
    work_order: true
    state: {metric: tripped, eq: true}
    command: {point: fault_reset, value: true}
  - id: fire-open-gate
    severity: critical
    kinds: [pump]
    message: "{device}: fire pump running"
    state: {metric: running, eq: true}
    command: {action: open, device: b1-gate-1}
  - id: bad-setpoint
    severity: minor
    kinds: [pump]
    message: "{device}: test"
    state: {metric: running, eq: false}
    command: {point: pressure_setpoint, value: 99}
"""


@pytest.fixture
async def pool(wo_db: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    with psycopg.connect(wo_db) as conn:
        store.add_gateway(conn, "c1", "gw1")
        store.add_device(conn, "c1", "b1-pump-1", gateway="gw1", kind="pump", profile_id="vfd-pump")
        store.add_device(conn, "c1", "b1-gate-1", gateway="gw1", kind="gate", profile_id="access-gate")
    async with AsyncConnectionPool(wo_db, min_size=1, max_size=2, open=False) as pool:
        yield pool


def labels_of(tmp_path: Path) -> dict[str, dict[str, str]]:
    path = tmp_path / "rules.yaml"
    path.write_text(RULES)
    return {cr.id: {**cr.labels, "kind": "pump"} for cr in load_ruleset([path]).rules}


def event(rule: str, state: Literal["raise", "clear"], clock: ManualClock, labels: dict[str, str]) -> AlarmEvent:
    return AlarmEvent(community="c1", device="b1-pump-1", rule=rule, state=state, ts=to_ms(clock.now()),
                      severity="major", message="x", work_order=False, labels=labels, device_kind="pump",
                      gateway="gw1", source="edge")


async def commands(conn: psycopg.AsyncConnection[Any]) -> list[dict[str, Any]]:
    async with conn.cursor(row_factory=dict_row) as cur:
        await cur.execute("SELECT device, kind, point, value, issued_by, status, reason, alarm_id "
                          "FROM device_commands ORDER BY id")
        return await cur.fetchall()


async def test_a_rule_command_is_sent_once_per_episode(
        pool: AsyncConnectionPool[Any], conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy,
        tmp_path: Path) -> None:
    labels = labels_of(tmp_path)
    assert labels["pump-fault-reset"]["command"] == '{"point":"fault_reset","value":true}'
    runner = RuleCommands(clock)
    first = await apply_event(conn, policy, event("pump-fault-reset", "raise", clock, labels["pump-fault-reset"]),
                              clock.now())
    (row,) = await runner.tick(pool)
    assert (row.kind, row.point, row.value, row.issued_by, row.status) == (
        "write", "fault_reset", True, "rule:pump-fault-reset", "pending")
    # the same episode: another tick, the alarm raised again, cleared and raised within the flap window
    assert await runner.tick(pool) == []
    clock.advance(timedelta(seconds=5))
    await apply_event(conn, policy, event("pump-fault-reset", "raise", clock, labels["pump-fault-reset"]), clock.now())
    clock.advance(timedelta(seconds=30))
    await apply_event(conn, policy, event("pump-fault-reset", "clear", clock, labels["pump-fault-reset"]), clock.now())
    clock.advance(timedelta(minutes=1))
    again = await apply_event(conn, policy, event("pump-fault-reset", "raise", clock, labels["pump-fault-reset"]),
                              clock.now())
    assert again.alarm_id == first.alarm_id
    assert await runner.tick(pool) == []
    assert [(c["point"], c["alarm_id"]) for c in await commands(conn)] == [("fault_reset", first.alarm_id)]


async def test_actions_to_another_device_and_refusals_are_audited(
        pool: AsyncConnectionPool[Any], conn: psycopg.AsyncConnection[Any], clock: ManualClock, policy: Policy,
        tmp_path: Path) -> None:
    labels = labels_of(tmp_path)
    for rule in ("fire-open-gate", "bad-setpoint"):
        await apply_event(conn, policy, event(rule, "raise", clock, labels[rule]), clock.now())
    # an alarm without a command, and one whose label is not a command: nothing sent
    await apply_event(conn, policy, event("other", "raise", clock, {"command": "reboot please"}), clock.now())
    rows = await RuleCommands(clock).tick(pool)
    assert len(rows) == 2
    assert [(c["device"], c["kind"], c["point"], c["value"], c["issued_by"], c["status"], c["reason"])
            for c in await commands(conn)] == [
        ("b1-gate-1", "action", "open", None, "rule:fire-open-gate", "pending", None),
        ("b1-pump-1", "write", "pressure_setpoint", 99, "rule:bad-setpoint", "rejected", "out_of_range")]
    # an alarm older than the window gets nothing (a cloud that was away does not act late)
    late = RuleCommands(clock, window=timedelta(0))
    clock.advance(timedelta(seconds=1))
    assert await late.tick(pool) == []


def test_a_command_is_a_write_or_an_action(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(RULES.replace("command: {point: fault_reset, value: true}",
                                  "command: {point: fault_reset, action: open}"))
    with pytest.raises(ConfigError) as info:
        load_ruleset([path])
    assert any(":10: rules.0.command" in str(i) and "write either point and value" in str(i)
               for i in info.value.issues), info.value.issues
