"""Alarm events are applied in the order they happened, not the order they arrived (issue 14 §2).

* the ordering key itself (pure): seq inside one outbox space, whatever the clocks do; event time
  across spaces and for sources without a seq; the same time is the same event;
* the seen case, through ingest's real ``alarm_events`` table and the processor: after a broker
  restart the resent raises (lower seqs) arrive after the clears (higher seqs) → no alarm stays
  active, no work order, no notification; a resend after a database restore changes nothing;
* a property over the real database: any permutation, with duplicates, of an edge's
  raise/update/clear sequence ends in the state of the in-order run, with no work order and no
  notification beyond the in-order run's.
"""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.types.json import Jsonb

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.alarms.ordering import Stamp, compare
from cloud.ops.alarms.processor import process_batch
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import default_policy
from guanjia.core.clock import ManualClock, to_ms
from tests.support.workorders import add_butler

T0 = datetime(2026, 1, 5, 2, 0, tzinfo=UTC)

# ----------------------------------------------------------------------------- the key (pure)


def test_same_time_is_the_same_event_whatever_its_seq() -> None:
    assert compare(Stamp(1000, 7, "gw1#"), Stamp(1000, 3, "gw1#")) == "same"  # a replay under a new seq
    assert compare(Stamp(1000), Stamp(1000, 3, "gw1#")) == "same"


def test_seq_orders_inside_one_space_whatever_the_clock_does() -> None:
    # the edge clock stepped back one hour between the raise (seq 5) and the clear (seq 6)
    assert compare(Stamp(1_000 - 3_600_000, 6, "gw1#a"), Stamp(1_000, 5, "gw1#a")) == "newer"
    # a device clock 10 minutes fast on the raise: the clear after it is still newer
    assert compare(Stamp(2_000, 9, "gw1#a"), Stamp(600_000, 8, "gw1#a")) == "newer"
    # the resent raise (lower seq) after its clear: older, whatever its time says
    assert compare(Stamp(5_000, 3, "gw1#a"), Stamp(4_000, 4, "gw1#a")) == "older"
    # two events of one batch (same seq): their time orders them
    assert compare(Stamp(5_000, 4, "gw1#a"), Stamp(4_000, 4, "gw1#a")) == "newer"


def test_time_orders_across_spaces_and_without_a_seq() -> None:
    # a new outbox incarnation restarts its seq counter: seq 1 is not older than seq 900
    assert compare(Stamp(9_000, 1, "gw1#b"), Stamp(8_000, 900, "gw1#a")) == "newer"
    assert compare(Stamp(7_000, 1, "gw1#b"), Stamp(8_000, 900, "gw1#a")) == "older"
    # a device moved to another gateway; fleet / system events have no seq
    assert compare(Stamp(9_000, 1, "gw2#"), Stamp(8_000, 900, "gw1#")) == "newer"
    assert compare(Stamp(9_000), Stamp(8_000, 4, "gw1#")) == "newer"
    assert compare(Stamp(7_000, 5, "gw1#"), Stamp(8_000)) == "older"


def test_without_the_incarnation_an_event_is_late_only_when_seq_and_time_both_say_so() -> None:
    # the resent raise after its clear: lower seq, earlier time
    assert compare(Stamp(5_000, 3, "gw1#"), Stamp(9_000, 4, "gw1#")) == "older"
    # a wiped outbox restarted its counter: lower seq, later time → a new event, not a late one
    assert compare(Stamp(90_000, 1, "gw1#"), Stamp(9_000, 4_000, "gw1#")) == "newer"
    # the edge clock stepped back: higher seq, earlier time
    assert compare(Stamp(1_000, 5, "gw1#"), Stamp(9_000, 4, "gw1#")) == "newer"
    # one side known only (a row from before ingest stored incarnations): the same fallback
    assert compare(Stamp(90_000, 1, "gw1#b"), Stamp(9_000, 4_000, "gw1#")) == "newer"
    assert compare(Stamp(5_000, 3, "gw1#legacy"), Stamp(9_000, 4, "gw1#")) == "older"


# ----------------------------------------------------------------------------- the seen case


async def insert_event(conn: psycopg.AsyncConnection[Any], gateway: int, device: str, seq: int, state: str,
                       ts: datetime, rule: str = "elevator-door-fault") -> None:
    await conn.execute(
        """INSERT INTO alarm_events (gateway_id, seq, device_code, rule, state, severity, ts, message, work_order,
                                     labels)
           VALUES (%s, %s, %s, %s, %s, 'major', %s, 'door fault', true, %s)""",
        (gateway, seq, device, rule, state, ts, Jsonb({"kind": "elevator", "priority": "normal"})))


async def scalar(conn: psycopg.AsyncConnection[Any], sql: str, *args: Any) -> Any:
    cur = await conn.execute(sql, args)
    row = await cur.fetchone()
    assert row is not None
    return row[0]


async def test_resent_raises_after_their_clears_leave_no_ghost_alarm(full: Any) -> None:
    """Seen: after a broker restart the edge's resent raises (seqs 1–6) arrived after the clears
    (seqs 7–12); the clears were "ignored", the raises applied, and 6 alarms stayed active with
    open P2 orders while the devices reported normally."""
    conn, gateway, _device = full
    policy = default_policy()
    lifts = [f"lift-{i}" for i in range(1, 7)]
    for i, lift in enumerate(lifts):  # the clears, sent after the restart, arrive first
        await insert_event(conn, gateway, lift, 7 + i, "clear", T0 + timedelta(seconds=40 + i))
    for i, lift in enumerate(lifts):  # then the raises the edge resends (unconfirmed before the restart)
        await insert_event(conn, gateway, lift, 1 + i, "raise", T0 + timedelta(seconds=i))
    results = await process_batch(conn, policy, T0 + timedelta(minutes=1))
    assert [r.outcome for r in results] == ["cleared_first"] * 6 + ["late"] * 6
    assert await scalar(conn, "SELECT count(*) FROM alarms WHERE active") == 0
    assert await scalar(conn, "SELECT count(*) FROM work_orders") == 0
    assert await scalar(conn, "SELECT count(*) FROM notifications") == 0
    # each alarm knows its episode: raised at the raise's time, cleared at the clear's, never active here
    cur = await conn.execute("SELECT device, raised_at, cleared_at, raise_count FROM alarms ORDER BY device")
    assert await cur.fetchall() == [(lift, T0 + timedelta(seconds=i), T0 + timedelta(seconds=40 + i), 1)
                                    for i, lift in enumerate(lifts)]
    assert await scalar(conn, "SELECT count(*) FROM alarm_trail WHERE action = 'late'") == 6

    # a resend of everything after a database restore (ingest's dedup forgot the seqs): nothing changes
    for i, lift in enumerate(lifts):
        await insert_event(conn, gateway, lift, 1 + i, "raise", T0 + timedelta(seconds=i))
        await insert_event(conn, gateway, lift, 7 + i, "clear", T0 + timedelta(seconds=40 + i))
    results = await process_batch(conn, policy, T0 + timedelta(minutes=2))
    assert {r.outcome for r in results} == {"late", "duplicate"}
    assert await scalar(conn, "SELECT count(*) FROM alarm_trail WHERE action = 'late'") == 6  # not twice
    assert await scalar(conn, "SELECT count(*) FROM alarms WHERE active") == 0
    assert await scalar(conn, "SELECT count(*) FROM work_orders") == 0

    # the fault comes back for real, later: a new seq → an alarm and one order, as always
    await insert_event(conn, gateway, "lift-1", 13, "raise", T0 + timedelta(hours=1))
    results = await process_batch(conn, policy, T0 + timedelta(hours=1))
    assert [(r.outcome, r.work_order_opened) for r in results] == [("raised", True)]


async def test_a_clear_after_an_edge_clock_step_back_still_clears(full: Any) -> None:
    """The edge clock stepped back 10 minutes between the raise and the clear: the seq orders them."""
    conn, gateway, _device = full
    policy = default_policy()
    await insert_event(conn, gateway, "lift-1", 41, "raise", T0)
    assert [r.outcome for r in await process_batch(conn, policy, T0)] == ["raised"]
    await insert_event(conn, gateway, "lift-1", 42, "clear", T0 - timedelta(minutes=10))
    assert [r.outcome for r in await process_batch(conn, policy, T0)] == ["cleared"]
    assert await scalar(conn, "SELECT active FROM alarms WHERE device = 'lift-1'") is False


async def test_a_wiped_outbox_restarting_its_seqs_still_raises(full: Any) -> None:
    """A new outbox incarnation numbers from 1 again: a later raise with a lower seq is new, not late."""
    conn, gateway, _device = full
    policy = default_policy()
    await insert_event(conn, gateway, "lift-1", 5000, "raise", T0)
    await insert_event(conn, gateway, "lift-1", 5001, "clear", T0 + timedelta(seconds=30))
    assert [r.outcome for r in await process_batch(conn, policy, T0)] == ["raised", "cleared"]
    await insert_event(conn, gateway, "lift-1", 3, "raise", T0 + timedelta(hours=2))
    assert [r.outcome for r in await process_batch(conn, policy, T0 + timedelta(hours=2))] == ["raised"]
    assert await scalar(conn, "SELECT active FROM alarms WHERE device = 'lift-1' AND current") is True


# ----------------------------------------------------------------------------- property


_communities = itertools.count()


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[tuple[str, str, int]], list[int], str | None]:
    """An edge's in-order events of one (device, rule) — (state, severity, time offset s) — an
    arrival order (a permutation of them with some delivered twice), and the outbox incarnation
    (``None``: not known to the cloud, the fallback rule, which does not claim clock steps)."""
    incarnation = draw(st.sampled_from(["inc-1", None]))
    n = draw(st.integers(1, 7))
    events = []
    t = 0
    for _ in range(n):
        t += draw(st.integers(1, 900))
        if incarnation is not None and draw(st.integers(0, 9)) == 0:
            t -= 3600  # the edge clock steps back an hour (the seq still orders)
        events.append((draw(st.sampled_from(["raise", "clear"])), draw(st.sampled_from(["major", "critical"])), t))
    seen: set[int] = set()
    for i, (state, severity, offset) in enumerate(events):  # one rule makes one transition per instant
        unique = offset
        while unique in seen:
            unique += 1
        seen.add(unique)
        events[i] = (state, severity, unique)
    order = list(draw(st.permutations(range(n))))
    for index in draw(st.lists(st.integers(0, n - 1), max_size=4)):
        order.insert(draw(st.integers(0, len(order))), index)
    return events, order, incarnation


async def _run(conn: psycopg.AsyncConnection[Any], community: str, events: list[AlarmEvent],
               order: list[int]) -> tuple[tuple[bool, str | None], int, dict[str, int]]:
    policy = default_policy()
    clock = ManualClock(T0)
    await add_butler(conn, "值班", community=community)
    for i in order:
        clock.advance(timedelta(seconds=1))
        await apply_event(conn, policy, replace(events[i], community=community), clock.now())
    cur = await conn.execute("SELECT active, severity FROM alarms WHERE community = %s AND current", (community,))
    row = await cur.fetchone()
    state = (False, None) if row is None or not row[0] else (True, str(row[1]))
    orders = int(await scalar(conn, "SELECT count(*) FROM work_orders WHERE community = %s", community))
    cur = await conn.execute("SELECT event, count(*) FROM notifications WHERE community = %s GROUP BY event",
                             (community,))
    return state, orders, {str(e): int(c) for e, c in await cur.fetchall()}


async def _check(url: str, history: list[tuple[str, str, int]], arrival: list[int], incarnation: str | None) -> None:
    base = to_ms(T0)
    events = [AlarmEvent(community="-", device="lift-9", rule="elevator-door-fault", state=state,  # type: ignore[arg-type]
                         ts=base + t * 1000, severity=severity, work_order=True, gateway="gw1", seq=100 + i,
                         incarnation=incarnation,
                         device_kind="elevator", labels={"priority": "normal"})
              for i, (state, severity, t) in enumerate(history)]
    n = next(_communities)
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        expected, orders, notes = await _run(conn, f"in-{n}", events, list(range(len(events))))
        state, orders_r, notes_r = await _run(conn, f"re-{n}", events, arrival)
    assert state == expected
    assert orders_r <= orders
    assert all(count <= notes.get(event, 0) for event, count in notes_r.items()), (notes_r, notes)


@pytest.fixture
def hooked_db(wo_db: str) -> str:
    async def seed() -> None:
        async with await psycopg.AsyncConnection.connect(wo_db, autocommit=True) as conn:
            await conn.execute("INSERT INTO webhook_endpoints (url, secret) VALUES ('http://127.0.0.1:9/h', 's')")
    asyncio.run(seed())
    return wo_db


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=histories())
def test_any_arrival_order_ends_as_the_in_order_run(hooked_db: str,
                                                    case: tuple[list[tuple[str, str, int]], list[int], str | None],
                                                    ) -> None:
    asyncio.run(_check(hooked_db, *case))
