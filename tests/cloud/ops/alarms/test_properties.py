"""Property-based checks of the alarm lifecycle against a real database: whatever sequence of
raises, clears, duplicates and out-of-order deliveries arrives, there is at most one current alarm
per identity, at most one unfinished work order per device and rule, and the alarm's active flag
follows the newest event."""

from __future__ import annotations

import asyncio
import itertools
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import default_policy
from guanjia.core.clock import ManualClock, to_ms
from tests.support.workorders import add_butler

_devices = itertools.count()

steps = st.lists(
    st.tuples(st.sampled_from(["raise", "clear"]), st.integers(1, 900), st.booleans(), st.booleans()),
    min_size=1, max_size=12,
)


async def _scenario(url: str, plan: list[tuple[str, int, bool, bool]]) -> None:
    policy = default_policy()
    clock = ManualClock()
    device = f"dev-{next(_devices)}"
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        newest: tuple[int, str] | None = None
        previous: AlarmEvent | None = None
        for state, gap_s, duplicate, replay_old in plan:
            clock.advance(timedelta(seconds=gap_s))
            event = AlarmEvent(community="cp", device=device, rule="pump_dry_run", state=state,  # type: ignore[arg-type]
                               ts=to_ms(clock.now()), severity="critical", work_order=True, device_kind="pump")
            await apply_event(conn, policy, event, clock.now())
            if duplicate:
                await apply_event(conn, policy, event, clock.now())
            if replay_old and previous is not None:
                await apply_event(conn, policy, previous, clock.now())  # an old event delivered late
            previous = event
            if newest is None and state == "clear":
                continue  # a clear with nothing raised is remembered, nothing more
            newest = (event.ts, state)
        cur = await conn.execute("SELECT count(*), bool_or(active) FROM alarms WHERE device = %s AND current",
                                 (device,))
        current, active = await cur.fetchone() or (0, None)
        cur = await conn.execute(
            "SELECT count(*) FROM work_orders WHERE device = %s AND state NOT IN ('resolved', 'closed', 'cancelled')",
            (device,))
        unfinished = (await cur.fetchone() or (0,))[0]
    if newest is None:  # only clears: remembered as a cleared alarm, nothing opened
        assert (current, active, unfinished) == (1, False, 0)
        return
    assert current == 1
    assert active == (newest[1] == "raise")
    assert unfinished == 1  # cleared is not repaired: the one order stays open


@pytest.fixture
def seeded_db(wo_db: str) -> str:
    async def seed() -> None:
        async with await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as conn:
            await add_butler(conn, "值班", community="cp")
    asyncio.run(seed())
    return wo_db


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_lifecycle_invariants(seeded_db: str, plan: list[tuple[str, int, bool, bool]]) -> None:
    asyncio.run(_scenario(seeded_db, plan))


def test_policy_errors_name_file_line_and_field(tmp_path: Path) -> None:
    from cloud.ops.model.policy import load_policy
    from guanjia.core.errors import ConfigError

    bad = tmp_path / "policy.yaml"
    bad.write_text("priorities:\n  P0: {respond: soon, on_site: 15m, resolve: 2h, escalate_every: 2m}\n"
                   "severity_priority: {critical: P9}\n", encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_policy(bad)
    text = str(info.value)
    assert f"{bad}:2: priorities.P0.respond:" in text
    assert f"{bad}:3: severity_priority.critical:" in text


