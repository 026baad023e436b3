"""How the ``config-rollout`` driver reads the gateways' reports, on a real database.

The edge judges a version once: a push of the version it is already trying is not answered on its
own (:mod:`edge.managed`). A second rollout that pushes the same version while the first one's push
is on probation must still get its answer from the verdict on that version, not wait ten minutes
for a report under its own push id and halt (``no_report``). The MQTT side is the end-to-end
rollout test's (``test_rollout.py``); here the driver's ``publish`` only records what it sends."""

from __future__ import annotations

import datetime as dt
from typing import Any

import orjson
import psycopg
from psycopg_pool import AsyncConnectionPool

from cloud.ops.fleet import configs, rollout
from cloud.registry import store
from edge.bundle import check_bundle
from guanjia.core.clock import ManualClock
from guanjia.core.wire import topic
from guanjia.core.wire_config import ConfigReport, ConfigState
from tests.support.edge.bundles import pressure_rule, pump_bundle

COMMUNITY = "c-reports"
START = dt.datetime(2026, 12, 6, 2, 0, tzinfo=dt.UTC)


def status(report: ConfigReport) -> bytes:
    return orjson.dumps({"state": "online", "health": {"config": report.wire()}})


def report(state: ConfigState, version: str, push: str) -> ConfigReport:
    good = version if state == "good" else None
    return ConfigReport(state, version if state != "rolled_back" else None, good, version, push, None, "", 0)


async def two_rollouts_of_one_version(pool: AsyncConnectionPool[Any], db: str) -> tuple[list[int], str]:
    with psycopg.connect(db) as conn:
        gateway_id = store.add_gateway(conn, COMMUNITY, "gw-a")
    async with pool.connection() as conn:
        ref = configs.GatewayRef(gateway_id, COMMUNITY, "gw-a")
        await rollout.upload_version(conn, check_bundle, ref, pump_bundle(1502, [("pump-1", 1)]), by="t", at=START,
                                     note="base")
        ids = []
        for _ in range(2):  # the same change twice: the same version
            made = await rollout.start_rollout(conn, check_bundle, [ref], {"rules/site.yaml": pressure_rule("r", 9.0)},
                                               [], canary=1, percent=100, probation_s=30, by="t", at=START, note="")
            assert isinstance(made, int)
            ids.append(made)
        targets = [t for i in ids for t in await configs.targets(conn, i)]
    assert len({t.version for t in targets}) == 1
    return ids, targets[0].version


async def test_a_second_push_of_a_version_on_probation_gets_the_verdict_of_the_first(
        pool: AsyncConnectionPool[Any], web_db: str) -> None:
    clock = ManualClock(START)
    driver = rollout.RolloutDriver(clock, "mqtt://unused")
    sent: list[str] = []

    async def publish(topic_name: str, payload: bytes) -> None:
        sent.append(orjson.loads(payload)["id"])

    ids, version = await two_rollouts_of_one_version(pool, web_db)
    status_topic = topic(COMMUNITY, "gw-a", "status")
    await driver.on_status(pool, status_topic, orjson.dumps({"state": "online"}))
    await driver.tick(pool, publish)
    assert len(sent) == 2  # both pushes went out
    # the edge tries the first push, ignores the second (same version), and the version passes
    await driver.on_status(pool, status_topic, status(report("probation", version, sent[0])))
    clock.advance(dt.timedelta(seconds=31))
    await driver.on_status(pool, status_topic, status(report("good", version, sent[0])))
    await driver.tick(pool, publish)
    async with pool.connection() as conn:
        states = [(await configs.rollouts(conn, all_communities=True, communities=[], rollout_id=i))[0].state
                  for i in ids]
    assert states == ["completed", "completed"]


async def test_a_rolled_back_version_fails_every_push_of_it(pool: AsyncConnectionPool[Any], web_db: str) -> None:
    driver = rollout.RolloutDriver(ManualClock(START), "mqtt://unused")
    sent: list[str] = []

    async def publish(topic_name: str, payload: bytes) -> None:
        sent.append(orjson.loads(payload)["id"])

    ids, version = await two_rollouts_of_one_version(pool, web_db)
    status_topic = topic(COMMUNITY, "gw-a", "status")
    await driver.on_status(pool, status_topic, orjson.dumps({"state": "online"}))
    await driver.tick(pool, publish)
    await driver.on_status(pool, status_topic, status(report("rolled_back", version, sent[0])))
    await driver.tick(pool, publish)
    async with pool.connection() as conn:
        found = [(await configs.rollouts(conn, all_communities=True, communities=[], rollout_id=i))[0] for i in ids]
    assert [r.state for r in found] == ["halted", "halted"]
