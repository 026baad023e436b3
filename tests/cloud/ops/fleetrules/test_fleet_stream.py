"""Fleet rules on the live ingested stream: telemetry published as a gateway would → real broker →
ingest worker (after-commit telemetry hook) → ``fleet-stream`` component → fleet alarm through
the shared lifecycle, raised and cleared; pending ``for:`` timers survive a component restart;
without a telemetry callback ingest is unchanged."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from cloud.ops.fleetrules.stream import STATE_NAME, FleetStreamComponent, StreamFleetRules, stream_ruleset
from cloud.ops.model.policy import default_policy
from cloud.registry import store
from cloud.runtime.hooks import IngestHooks, TelemetryBatch, TelemetryFeed
from cloud.runtime.metrics import Metrics
from guanjia.core import wire
from guanjia.core.clock import ManualClock
from tests.support.ingest import publisher, running_worker, scalar, unique, wait_for
from tests.support.services import BrokerHandle

RULE = "fleet-pump-outlet-pressure-low"


@pytest.fixture
def stream_db(fresh_db: str) -> str:
    return fresh_db


def setup_site(url: str, community: str, gateway: str, other_gateway: str) -> None:
    with psycopg.connect(url) as conn:
        store.add_gateway(conn, community, gateway)
        store.add_gateway(conn, community, other_gateway)
        store.add_devices_bulk(conn, community, gateway, ["pump-1"], kind="pump")
        store.add_devices_bulk(conn, community, other_gateway, ["pump-9"], kind="pump")


def reading(device: str, ts: int, pressure: float) -> wire.ReadingDict:
    return {"device": device, "ts": ts, "values": {"outlet_pressure": pressure, "running": False}}


def payload(community: str, gateway: str, seq: int, items: list[wire.ReadingDict]) -> bytes:
    return wire.encode("telemetry", gateway=gateway, community=community, seq=seq,
                       sent_at=int(time.time() * 1000), items=items)


@contextlib.asynccontextmanager
async def ingest(url: str, mqtt_url: str, hooks: IngestHooks) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with running_worker(url, mqtt_url, hooks=hooks, clean_start=True) as worker:
        yield worker.pool


@contextlib.asynccontextmanager
async def component(pool: AsyncConnectionPool[Any], hooks: IngestHooks,
                    clock: ManualClock) -> AsyncIterator[FleetStreamComponent]:
    comp = FleetStreamComponent(default_policy(), clock, tick_s=0.05, save_interval=0.5)
    ctx = SimpleNamespace(pool=pool, metrics=Metrics(), hooks=hooks)
    task = asyncio.create_task(comp.run(ctx))
    try:
        async with asyncio.timeout(10):
            await comp.started.wait()
        yield comp
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def alarm(url: str, community: str) -> tuple[Any, ...] | None:
    async with await psycopg.AsyncConnection.connect(url) as conn:
        cur = await conn.execute(
            "SELECT source, severity, active, device_kind, (SELECT count(*) FROM work_orders) FROM alarms "
            "WHERE community = %s AND device = 'pump-1' AND rule = %s AND current", (community, RULE))
        return await cur.fetchone()


async def test_stream_rule_raises_and_clears_a_fleet_alarm(stream_db: str, broker: BrokerHandle) -> None:
    community, gateway, other = unique("cs"), unique("gw"), unique("gx")
    setup_site(stream_db, community, gateway, other)
    t0 = int(time.time() * 1000) - 7 * 60_000  # device time; the ingest window accepts 30 days back
    clock = ManualClock(datetime.fromtimestamp(t0 / 1000, UTC))
    hooks = IngestHooks()
    async with ingest(stream_db, broker.admin_url, hooks) as pool, component(pool, hooks, clock) as comp:
        with publisher(broker.admin_url) as pub:
            topic = wire.topic(community, gateway, "telemetry")
            # pump-9 belongs to another gateway: this gateway's reading for it is refused and not evaluated
            pub.publish(topic, payload(community, gateway, 1, [reading("pump-1", t0, 0.4), reading("pump-9", t0, 0.1)]))

            async def evaluated() -> bool:
                return comp.core.stats["readings"] == 1

            await wait_for(evaluated, what="the reading evaluated")
            assert comp.core.stats["refused"] == 1
            clock.advance(timedelta(minutes=4))
            await asyncio.sleep(0.3)
            assert await alarm(stream_db, community) is None  # for: 5m not over yet

            clock.advance(timedelta(minutes=1, seconds=1))

            async def raised() -> bool:
                return await alarm(stream_db, community) == ("fleet", "warning", True, "pump", 0)

            await wait_for(raised, what="the fleet alarm")
            # pressure back: clears after clear_for (1m)
            pub.publish(topic, payload(community, gateway, 2, [reading("pump-1", t0 + 6 * 60_000, 3.8)]))

            async def evaluated_twice() -> bool:
                return comp.core.stats["readings"] == 2

            await wait_for(evaluated_twice, what="the second reading")
            clock.advance(timedelta(minutes=2))

            async def cleared() -> bool:
                row = await alarm(stream_db, community)
                return row is not None and row[2] is False

            await wait_for(cleared, what="the clear")
    assert await scalar(stream_db, "SELECT count(*) FROM telemetry") == 4  # 2 readings x 2 metrics (pump-9 refused)
    assert await scalar(stream_db, "SELECT count(*) FROM work_orders") == 0  # a warning, no ticket


async def test_pending_for_survives_a_component_restart(stream_db: str, broker: BrokerHandle) -> None:
    community, gateway, other = unique("cs"), unique("gw"), unique("gx")
    setup_site(stream_db, community, gateway, other)
    t0 = int(time.time() * 1000) - 7 * 60_000
    clock = ManualClock(datetime.fromtimestamp(t0 / 1000, UTC))
    hooks = IngestHooks()
    async with ingest(stream_db, broker.admin_url, hooks) as pool:
        async with component(pool, hooks, clock) as comp:
            with publisher(broker.admin_url) as pub:
                pub.publish(wire.topic(community, gateway, "telemetry"),
                            payload(community, gateway, 1, [reading("pump-1", t0, 0.3)]))

                async def evaluated() -> bool:
                    return comp.core.stats["readings"] == 1

                await wait_for(evaluated, what="the reading evaluated")
            clock.advance(timedelta(minutes=3))  # 3 of the 5 minutes elapse before the restart
            await asyncio.sleep(0.2)
        assert not hooks.telemetry  # the stopped component unregistered its feed
        assert await scalar(stream_db, f"SELECT count(*) FROM fleet_rule_state WHERE name = '{STATE_NAME}'") == 1
        assert await alarm(stream_db, community) is None
        clock.advance(timedelta(minutes=2, seconds=1))
        # a new component: no reading arrives any more, only the restored timer can raise the alarm
        async with component(pool, hooks, clock):

            async def raised() -> bool:
                row = await alarm(stream_db, community)
                return row is not None and row[2] is True

            await wait_for(raised, what="the alarm from the restored timer")


async def test_without_a_telemetry_callback_ingest_is_unchanged(stream_db: str, broker: BrokerHandle) -> None:
    community, gateway, other = unique("cs"), unique("gw"), unique("gx")
    setup_site(stream_db, community, gateway, other)
    now = int(time.time() * 1000)
    hooks = IngestHooks()
    async with ingest(stream_db, broker.admin_url, hooks):
        with publisher(broker.admin_url) as pub:
            pub.publish(wire.topic(community, gateway, "telemetry"),
                        payload(community, gateway, 1, [reading("pump-1", now, 0.2)]))

            async def stored() -> bool:
                return bool(await scalar(stream_db, "SELECT count(*) FROM telemetry") == 2)

            await wait_for(stored, what="the reading stored")
            # a callback registered later sees only new commits, and a redelivery is not handed twice
            seen: list[TelemetryBatch] = []
            hooks.on_telemetry(seen.extend)
            for _ in range(2):
                pub.publish(wire.topic(community, gateway, "telemetry"),
                            payload(community, gateway, 2, [reading("pump-1", now + 1000, 0.2)]))

            async def stored_again() -> bool:
                return bool(await scalar(stream_db, "SELECT count(*) FROM ingest_batches") == 2)

            await wait_for(stored_again, what="the second message")
            await asyncio.sleep(0.3)
    assert [(b.seq, b.gateway, len(b.readings)) for b in seen] == [(2, gateway, 1)]
    assert hooks.failures == 0
    assert await scalar(stream_db, "SELECT count(*) FROM alarms") == 0


def test_feed_is_bounded_and_counts_drops() -> None:
    feed = TelemetryFeed(maxsize=2)
    batch = TelemetryBatch("c", "g", 1, 1, 0, {"d": 1}, [reading("d", 0, 1.0), reading("d", 1, 1.0)])
    feed.offer([batch, batch, batch])
    assert feed.qsize() == 2
    assert (feed.dropped_batches, feed.dropped_readings) == (1, 2)


def test_a_failing_callback_never_fails_ingest() -> None:
    hooks = IngestHooks()

    def broken(batches: list[TelemetryBatch]) -> None:
        raise RuntimeError("boom")

    got: list[TelemetryBatch] = []
    hooks.on_telemetry(broken)
    hooks.on_telemetry(got.extend)
    batch = TelemetryBatch("c", "g", 1, 1, 0, {}, [])
    hooks.fire_telemetry([batch])
    assert hooks.failures == 1
    assert got == [batch]


def test_future_readings_and_irrelevant_kinds_are_not_evaluated() -> None:
    core = StreamFleetRules(default_policy(), stream_ruleset())
    received = 1_700_000_000_000
    core._directory[1] = (None, float("inf"))  # a device of a kind no stream rule is about
    batch = TelemetryBatch("c", "g", 1, 1, received, {"pump-1": 1, "meter-1": 2},
                           [reading("pump-1", received + 3_600_000, 0.1), reading("meter-1", received, 0.1)])
    assert core.evaluate(batch) == []
    assert core.stats == {"readings": 0, "refused": 1, "unknown_devices": 1, "lost_transitions": 0}


async def test_component_runs_in_the_cloud_service_and_saves_its_state(stream_db: str) -> None:
    from cloud.ops.fleetrules.stream import components
    from cloud.runtime.context import CloudConfig
    from cloud.service import CloudService
    from guanjia.core.settings import Settings

    settings = Settings(mode="test", database_url=stream_db, secret_key="stream-tests-secret-0123456789-abcdef")
    async with CloudService(settings, CloudConfig.from_settings(settings, api=False, prefer_timescale=False),
                            components=[components]) as service:
        await asyncio.sleep(0.5)
        assert {t.get_name() for t in service._tasks} == {"fleet-stream"}
        assert all(not t.done() for t in service._tasks)
        assert len(service.hooks.telemetry) == 1  # the feed is registered with ingest
    assert await scalar(stream_db, f"SELECT count(*) FROM fleet_rule_state WHERE name = '{STATE_NAME}'") == 1
    async with CloudService(settings, CloudConfig.from_settings(settings, api=False, workers=0, migrate=False),
                            components=[components]) as service:
        assert service._tasks == []  # no ingest workers in this process: nothing to evaluate


def test_shipped_stream_rules_fit_the_profiles_and_open_no_second_ticket() -> None:
    from device_profiles.loader import builtin_profiles
    from rules import builtin_rulesets
    from rules.profiles import check_against_profiles

    ruleset = stream_ruleset()
    assert check_against_profiles(ruleset, builtin_profiles().values()) == []
    edge = builtin_rulesets()
    for cr in ruleset.rules:
        assert cr.id not in edge  # another rule id is another alarm: never restate an edge rule
        assert cr.rule.work_order is False  # the edge rules open the tickets
