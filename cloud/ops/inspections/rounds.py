"""Scans, findings, missed checkpoints and coverage of inspection rounds.

* :func:`record_scan` — the butler's phone sends the checkpoint's code (read from the QR code or
  typed), with an optional reading, photo and note; a *finding* opens a work order (origin
  ``inspection``, routed like a repair) in the same transaction and the scan links it.
* :func:`check_missed` — for every checkpoint, the latest slot that has closed (its end plus the
  route's grace is past): no scan in it raises ``inspection_missed`` on the checkpoint; a scan in
  the latest closed slot clears it. Like the offline watchdog, only *changes* go through the
  alarm lifecycle, so a checkpoint missed for a day is one alarm, not one per slot. A late scan
  (after its slot closed) counts for the slot it falls in, not for the missed one.
* :func:`coverage` — per route and local day: checkpoint-slots expected (closed slots only, from
  the slot the route was created in), covered, missed, and the ratio.

Time is always the caller's (the injected clock); slots are local to the community
(:mod:`cloud.ops.inspections.slots`).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Final

import psycopg
from psycopg import AsyncConnection
from psycopg_pool import AsyncConnectionPool

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.inspections import repo
from cloud.ops.inspections.slots import last_closed, slots_of_day
from cloud.ops.model.actors import Actor
from cloud.ops.model.alarms import AlarmEvent, zh_label
from cloud.ops.model.errors import InvalidRequest
from cloud.ops.model.policy import Policy
from cloud.ops.workorders import repo as wo_repo
from guanjia.core.clock import Clock, to_ms

log = logging.getLogger(__name__)

MISSED_RULE: Final = "inspection_missed"


@dataclass(frozen=True, slots=True)
class Scan:
    code: str
    method: str = "qr"
    reading: float | None = None
    photo: str | None = None
    note: str = ""
    finding: bool = False


@dataclass(frozen=True, slots=True)
class ScanResult:
    scan_id: int
    checkpoint: str
    work_order_id: int | None


async def record_scan(conn: AsyncConnection[Any], policy: Policy, community: str, scan: Scan, actor: Actor,
                      now: datetime) -> ScanResult:
    if scan.method not in ("qr", "code"):
        raise InvalidRequest("method: qr or code")
    if scan.finding and not scan.note.strip():
        raise InvalidRequest("note: describe the finding / 请描述发现的问题")
    async with conn.transaction():
        route, cp = await repo.checkpoint_by_code(conn, community, scan.code)
        if cp.reading_unit and scan.reading is None:
            raise InvalidRequest(f"reading: this checkpoint needs a reading in {cp.reading_unit} / 需要读数")
        scan_id = await repo.insert_scan(conn, cp.id, actor.label, actor.butler_id, now, scan.method, scan.reading,
                                         scan.photo, scan.note[:2000])
        wo_id = None
        if scan.finding:
            wo = await wo_repo.open_order(conn, policy, wo_repo.NewOrder(
                community=community, title=f"inspection finding: {cp.name}",
                title_zh=f"巡检发现：{cp.name}",
                origin="inspection", priority=policy.manual_priority, building=cp.building, device=cp.device,
                skill="general", description=scan.note[:2000], location=f"{route.name} · {cp.name}",
                photos=[scan.photo] if scan.photo else []), now, actor)
            assert wo is not None  # no alarm id: nothing can refuse it
            wo_id = int(wo["id"])
            await repo.link_work_order(conn, scan_id, wo_id)
    return ScanResult(scan_id, cp.code, wo_id)


@dataclass(slots=True)
class MissedResult:
    raised: list[str] = field(default_factory=list)
    cleared: list[str] = field(default_factory=list)


async def check_missed(conn: AsyncConnection[Any], policy: Policy, now: datetime) -> MissedResult:
    result = MissedResult()
    missed: dict[tuple[str, str], tuple[str, str]] = {}
    for route in await repo.routes(conn):
        start, end = last_closed(now, route.every_hours, timedelta(minutes=route.grace_minutes), route.zone)
        if end <= route.created_at:
            continue  # the route did not exist yet
        scanned = await repo.scanned_between(conn, route.id, start, end)
        for cp in await repo.checkpoints(conn, route.id):
            if cp.id not in scanned:
                local = f"{start.astimezone(route.zone):%m-%d %H:%M}–{end.astimezone(route.zone):%H:%M}"
                missed[(route.community, cp.code)] = (f"巡检点漏检：{route.name} · {cp.name}（{local}）",
                                                     f"checkpoint missed: {route.name} · {cp.name} ({local})")
    alarmed = await repo.active_alarm_devices(conn, MISSED_RULE)
    for (community, code), why in sorted(missed.items()):
        if (community, code) not in alarmed:
            await apply_event(conn, policy, _event(community, code, "raise", now, *why), now)
            result.raised.append(code)
    for community, code in sorted(alarmed - set(missed)):
        await apply_event(conn, policy, _event(community, code, "clear", now, "巡检点已巡", "checkpoint visited"), now)
        result.cleared.append(code)
    return result


def _event(community: str, code: str, state: str, now: datetime, zh: str, en: str) -> AlarmEvent:
    return AlarmEvent(community=community, device=code, rule=MISSED_RULE, state=state,  # type: ignore[arg-type]
                      ts=to_ms(now), severity="minor", message=en, labels=zh_label(zh), work_order=False,
                      source="system", device_kind="checkpoint")


@dataclass(frozen=True, slots=True)
class Coverage:
    route_id: int
    route: str
    day: date
    expected: int
    covered: int
    missed: list[dict[str, str]]

    @property
    def ratio(self) -> float | None:
        return round(self.covered / self.expected, 4) if self.expected else None


async def coverage(conn: AsyncConnection[Any], community: str, day: date, now: datetime) -> list[Coverage]:
    """Checkpoint-slots of the local ``day`` that have closed by ``now``: expected, covered, missed."""
    out: list[Coverage] = []
    for route in await repo.routes(conn, community):
        zone, grace = route.zone, timedelta(minutes=route.grace_minutes)
        closed = [(s, e) for s, e in slots_of_day(day, route.every_hours, zone)
                  if e + grace <= now and e > route.created_at]
        cps = await repo.checkpoints(conn, route.id)
        covered, missed = 0, []
        if closed:
            scans = await repo.scanned_between(conn, route.id, closed[0][0], closed[-1][1])
            for start, end in closed:
                for cp in cps:
                    if any(start <= at < end for at in scans.get(cp.id, [])):
                        covered += 1
                    else:
                        missed.append({"checkpoint": cp.code, "name": cp.name,
                                       "slot": f"{start.astimezone(zone):%H:%M}–{end.astimezone(zone):%H:%M}"})
        out.append(Coverage(route.id, route.name, day, len(closed) * len(cps), covered, missed))
    return out


class InspectionWatch:
    """Cloud-service component: missed-checkpoint alarms every ``interval`` seconds (default 1 min)."""

    name = "inspection-watch"

    def __init__(self, policy: Policy, clock: Clock, interval: float = 60.0) -> None:
        self.policy = policy
        self.clock = clock
        self.interval = interval
        self.raised = 0

    async def tick(self, pool: AsyncConnectionPool[Any]) -> MissedResult:
        async with asyncio.timeout(60), pool.connection() as conn:
            result = await check_missed(conn, self.policy, self.clock.now())
        self.raised += len(result.raised)
        return result

    async def run(self, ctx: Any) -> None:
        ctx.metrics.gauge("guanjia_inspection_missed_raised", "missed-checkpoint alarms raised by this process",
                          lambda: float(self.raised))
        while True:
            try:
                await self.tick(ctx.pool)
            except (psycopg.Error, TimeoutError) as exc:
                log.warning("inspection watch failed: %s", exc)
            await asyncio.sleep(self.interval)
