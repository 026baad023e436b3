"""Staged configuration rollout to the edge: versions, rollouts, and the ``config-rollout`` component.

A **change** (some files of a bundle, and names to remove) is laid over each target gateway's
current version (:func:`overlay`: its last good one, else its newest), giving one version per
gateway — gateways differ in their devices, a rules change does not. Every resulting bundle is
checked with the edge's own validators (the injected :class:`~cloud.runtime.context.EdgeConfigCheck`)
before anything is stored; one bad gateway refuses the whole rollout with every gateway's
``file:line: field: message``.

**Stages** (:func:`stages`): the first ``canary`` gateways, then up to ``percent`` % of them,
then all. The component sends a stage's pushes only when every target of the stages before it
is ``applied`` (the edge reported ``good``: its probation passed). Any target that fails — the
edge refused the version, rolled it back, or never reported within ``report_timeout`` — halts
the rollout; nothing more is sent until an engineer resumes it (the failed targets are then
skipped) or aborts it. Every action is written to the admin audit (migration 602), the
automatic halt and completion with the actor ``system:config-rollout``.

State lives in the tables (:mod:`.configs`), so a restarted cloud carries on where it was; time
comes from the injected clock, so a test pins every deadline. Why a polling ticker like the
command dispatcher's and not a wakeup per change: reports arrive on this component's own MQTT
session and wake the ticker at once (:attr:`RolloutDriver.wake`); the 0.25 s tick only bounds
how soon a rollout created by the API in another process is noticed.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import aiomqtt
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from cloud.db import audit
from cloud.ops.fleet import configs
from cloud.ops.fleet.configs import GatewayRef
from cloud.ops.fleet.session import Publish, run_session
from cloud.runtime.context import Component, EdgeConfigCheck, ServiceContext
from guanjia.core.clock import Clock, to_ms
from guanjia.core.errors import ConfigError, ConfigIssue, WireError
from guanjia.core.wire import TOPIC_ROOT, parse_topic, status_state, topic
from guanjia.core.wire_config import ConfigPush, encode_config_push, parse_config_report

log = logging.getLogger(__name__)

SYSTEM = "system:config-rollout"
STATUS_TOPIC = f"{TOPIC_ROOT}/+/+/status"


def stages(count: int, canary: int, percent: int) -> list[int]:
    """The stage of each of ``count`` targets in order: 0 canary, 1 up to ``percent`` %, 2 the rest."""
    first = min(count, canary)
    second = max(first, min(count, math.ceil(count * percent / 100)))
    return [0 if i < first else 1 if i < second else 2 for i in range(count)]


def overlay(base: Mapping[str, str] | None, files: Mapping[str, str], remove: list[str]) -> dict[str, str]:
    merged = dict(base or {})
    for name in remove:
        merged.pop(name, None)
    merged.update(files)
    return merged


@dataclass(slots=True)
class Refused:
    """A change that does not validate: the issues per gateway (``community/gateway`` → issues)."""

    issues: dict[str, list[ConfigIssue]]


def check(validator: EdgeConfigCheck, files: Mapping[str, str]) -> str | list[ConfigIssue]:
    try:
        return validator(files)
    except ConfigError as exc:
        return list(exc.issues)


async def upload_version(conn: AsyncConnection[Any], validator: EdgeConfigCheck, gateway: GatewayRef,
                         files: dict[str, str], *, by: str, at: dt.datetime, note: str) -> str | Refused:
    """Store a whole bundle as a version of ``gateway`` (not pushed: a rollout pushes)."""
    version = check(validator, files)
    if isinstance(version, list):
        return Refused({f"{gateway.community}/{gateway.code}": version})
    if await configs.save_version(conn, gateway.id, version, files, by=by, at=at, note=note):
        await audit.record(conn, at=at, actor=by, action="config.version_uploaded", community=gateway.community,
                           target=f"gateway {gateway.community}/{gateway.code}", detail={"version": version})
    return version


async def start_rollout(conn: AsyncConnection[Any], validator: EdgeConfigCheck, gateways: list[GatewayRef],
                        files: dict[str, str], remove: list[str], *, canary: int, percent: int,
                        probation_s: float | None, by: str, at: dt.datetime, note: str) -> int | Refused:
    """Lay the change over each gateway's version, check them all, store them and the rollout."""
    planned: list[tuple[GatewayRef, str, dict[str, str]]] = []
    refused: dict[str, list[ConfigIssue]] = {}
    for gateway in gateways:
        merged = overlay(await configs.base_files(conn, gateway.id), files, remove)
        version = check(validator, merged)
        if isinstance(version, list):
            refused[f"{gateway.community}/{gateway.code}"] = version
        else:
            planned.append((gateway, version, merged))
    if refused:
        return Refused(refused)
    for gateway, version, merged in planned:
        await configs.save_version(conn, gateway.id, version, merged, by=by, at=at, note=note)
    order = stages(len(planned), canary, percent)
    rollout_id = await configs.create_rollout(
        conn, [(g.id, v, stage) for (g, v, _), stage in zip(planned, order, strict=True)],
        canary=canary, percent=percent, probation_s=probation_s, note=note, by=by, at=at)
    await audit.record(conn, at=at, actor=by, action="config.rollout_started", target=f"rollout {rollout_id}",
                       community=gateways[0].community if len({g.community for g in gateways}) == 1 else None,
                       detail={"gateways": [f"{g.community}/{g.code}" for g, _, _ in planned],
                               "versions": sorted({v for _, v, _ in planned}), "canary": canary, "percent": percent,
                               "files": sorted(files), "removed": sorted(remove)})
    return rollout_id


async def resume(conn: AsyncConnection[Any], rollout_id: int, *, by: str, at: dt.datetime) -> bool:
    """A halted rollout runs on; its failed targets are skipped (they keep their last good version)."""
    if not await configs.move_rollout(conn, rollout_id, ("halted",), "running", at):
        return False
    skipped = await configs.skip_failed(conn, rollout_id, at)
    await audit.record(conn, at=at, actor=by, action="config.rollout_resumed", target=f"rollout {rollout_id}",
                       detail={"skipped": skipped})
    return True


async def abort(conn: AsyncConnection[Any], rollout_id: int, *, by: str, at: dt.datetime) -> bool:
    """Nothing more is sent; gateways that applied the version keep it."""
    if not await configs.move_rollout(conn, rollout_id, ("running", "halted"), "aborted", at, "aborted by " + by):
        return False
    await audit.record(conn, at=at, actor=by, action="config.rollout_aborted", target=f"rollout {rollout_id}")
    return True




class RolloutDriver:
    """The ``config-rollout`` component (see the module docstring)."""

    name = "config-rollout"

    def __init__(self, clock: Clock, mqtt_url: str, *, tick_s: float = 0.25,
                 report_timeout: dt.timedelta = dt.timedelta(minutes=10), client_id: str = "guanjia-cloud-rollout"):
        self.clock = clock
        self.mqtt_url = mqtt_url
        self.tick_s = tick_s
        self.report_timeout = report_timeout
        """A target sent this long ago without an outcome fails (offline box, lost push): its
        probation window plus a margin; a halted rollout is cheaper than one waiting forever."""
        self.client_id = client_id
        self.online: dict[tuple[str, str], bool] = {}
        self.wake = asyncio.Event()

    async def tick(self, pool: AsyncConnectionPool[Any], publish: Publish) -> None:
        now = self.clock.now()
        async with pool.connection() as conn:
            for rollout in await configs.rollouts(conn, all_communities=True, communities=[], running_only=True):
                await self._advance(conn, rollout, now, publish)

    async def _advance(self, conn: AsyncConnection[Any], rollout: configs.RolloutRow, now: dt.datetime,
                       publish: Publish) -> None:
        targets = await configs.targets(conn, rollout.id)
        for t in targets:
            if t.state == "sent" and t.sent_at is not None and now - t.sent_at > self.report_timeout:
                await configs.move_target(conn, t.push_id, ("sent",), "failed", now, reason="no_report",
                                          detail=f"no outcome reported within {self.report_timeout}")
                t.state, t.reason = "failed", "no_report"
        failed = [t for t in targets if t.state == "failed"]
        if failed:
            first = failed[0]
            reason = f"{first.community}/{first.gateway}: {first.reason}: {first.detail}"[:500]
            if await configs.move_rollout(conn, rollout.id, ("running",), "halted", now, reason):
                await audit.record(conn, at=now, actor=SYSTEM, action="config.rollout_halted",
                                   target=f"rollout {rollout.id}", community=first.community,
                                   detail={"gateway": f"{first.community}/{first.gateway}", "reason": first.reason,
                                           "detail": first.detail})
                log.warning("rollout %d halted: %s", rollout.id, reason)
            await conn.commit()
            return
        open_stages = sorted({t.stage for t in targets if t.state in ("waiting", "sent")})
        if not open_stages:
            if await configs.move_rollout(conn, rollout.id, ("running",), "completed", now):
                await audit.record(conn, at=now, actor=SYSTEM, action="config.rollout_completed",
                                   target=f"rollout {rollout.id}", detail={"gateways": len(targets)})
                log.info("rollout %d completed: %d gateways", rollout.id, len(targets))
            await conn.commit()
            return
        await conn.commit()
        due = [t for t in targets if t.stage == open_stages[0] and t.state == "waiting"
               and self.online.get((t.community, t.gateway), False)]
        for t in due:
            files = await configs.version_files(conn, t.gateway_id, t.version)
            if files is None or not await configs.move_target(conn, t.push_id, ("waiting",), "sent", now):
                continue
            await conn.commit()
            payload = encode_config_push(ConfigPush(t.push_id, t.version, files, rollout.probation_s), ts=to_ms(now))
            try:
                await publish(topic(t.community, t.gateway, "cmd"), payload)
            except (aiomqtt.MqttError, TimeoutError):
                await configs.move_target(conn, t.push_id, ("sent",), "waiting", now)
                await conn.commit()
                raise

    async def on_status(self, pool: AsyncConnectionPool[Any], topic_name: str, payload: bytes) -> None:
        """A gateway's status: its online state, and its config report (stored; a target's outcome)."""
        try:
            parts = parse_topic(topic_name)
        except WireError:
            return
        if parts.kind != "status":
            return
        state = status_state(payload)
        if state is not None:
            self.online[(parts.community, parts.gateway)] = state == "online"
        report = parse_config_report(payload)
        if report is None:
            self.wake.set()
            return
        now = self.clock.now()
        async with pool.connection() as conn:
            gateway_id = await configs.gateway_by_code(conn, parts.community, parts.gateway)
            if gateway_id is None:
                return
            await configs.record_report(conn, gateway_id, report, now)
            # The edge judges a version once: a second rollout that pushed the same version while the
            # first one's push was on probation gets no report of its own (the edge ignores a push of
            # what it is already trying), so the verdict on the version answers every push of it.
            if report.state == "good" and report.running:
                await configs.settle_version(conn, gateway_id, report.running, "applied", now, push=report.push,
                                             whole_version=True)
            elif report.state in ("rolled_back", "refused") and report.attempted:
                await configs.settle_version(conn, gateway_id, report.attempted, "failed", now, push=report.push,
                                             whole_version=report.state == "rolled_back",
                                             reason=report.reason or report.state, detail=report.detail)
        self.wake.set()

    # ------------------------------------------------------------------ component
    async def run(self, ctx: ServiceContext) -> None:
        pool = ctx.pool
        await run_session("config rollout", self.mqtt_url, self.client_id, (STATUS_TOPIC,),
                          on_message=lambda topic_name, payload: self.on_status(pool, topic_name, payload),
                          tick=lambda publish: self.tick(pool, publish), wake=self.wake, tick_s=self.tick_s,
                          on_lost=self.online.clear)


def components(ctx: ServiceContext) -> list[Component]:
    """The driver when a broker is configured (``GUANJIA_MQTT_URL``); none otherwise."""
    if not ctx.config.mqtt_url:
        return []
    return [RolloutDriver(ctx.clock, ctx.config.mqtt_url, client_id=f"guanjia-cloud-rollout-{uuid.uuid4().hex[:8]}")]
