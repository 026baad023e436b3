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


class Pushed:
    """Two rollouts of one version to one online gateway, both pushes sent by the driver."""

    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool
        self.clock = ManualClock(START)
        self.driver = rollout.RolloutDriver(self.clock, "mqtt://unused")
        self.sent: list[str] = []
        self.ids: list[int] = []
        self.version = ""

    async def publish(self, topic_name: str, payload: bytes) -> None:
        self.sent.append(orjson.loads(payload)["id"])

    async def start(self, db: str) -> None:
        self.ids, self.version = await two_rollouts_of_one_version(self.pool, db)
        await self.report_raw(orjson.dumps({"state": "online"}))
        await self.driver.tick(self.pool, self.publish)
        assert len(self.sent) == 2  # both pushes went out

    async def report_raw(self, payload: bytes) -> None:
        await self.driver.on_status(self.pool, topic(COMMUNITY, "gw-a", "status"), payload)

    async def report(self, state: ConfigState) -> None:
        """The edge's report on the first push (it ignores the second: the same version)."""
        await self.report_raw(status(report(state, self.version, self.sent[0])))

    async def rollout_states(self) -> list[str]:
        await self.driver.tick(self.pool, self.publish)
        async with self.pool.connection() as conn:
            return [(await configs.rollouts(conn, all_communities=True, communities=[], rollout_id=i))[0].state
                    for i in self.ids]


async def test_a_second_push_of_a_version_on_probation_gets_the_verdict_of_the_first(
        pool: AsyncConnectionPool[Any], web_db: str) -> None:
    pushed = Pushed(pool)
    await pushed.start(web_db)
    await pushed.report("probation")
    pushed.clock.advance(dt.timedelta(seconds=31))
    await pushed.report("good")
    assert await pushed.rollout_states() == ["completed", "completed"]


async def test_a_rolled_back_version_fails_every_push_of_it(pool: AsyncConnectionPool[Any], web_db: str) -> None:
    pushed = Pushed(pool)
    await pushed.start(web_db)
    await pushed.report("rolled_back")
    assert await pushed.rollout_states() == ["halted", "halted"]
