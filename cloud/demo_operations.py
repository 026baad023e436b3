"""Demo data of property operations (issue 17): a lift's half-monthly maintenance plan with one
maintenance already completed (checklist, photo, both signatures) and the next one open, a pump
plan, a public-area inspection route with a missed checkpoint alarm, handed to the demo's lift
contractor where there is one, with its maintenance contract (shown with its measured compliance
on the contracts page; rescue is left to the butlers, as the tour of docs/tour.md tells it).

Everything goes through the product's own write path (plans, the scheduler, the completion
steps, scans, the missed-checkpoint check) with ``now`` moved back in time where history is
needed — no row is forged. Idempotent: a community that already has a plan is left alone.
"""

from __future__ import annotations

import base64
import logging
import struct
import zlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import AsyncConnection

from cloud.ops.inspections import repo as inspections
from cloud.ops.inspections.rounds import Scan, check_missed, record_scan
from cloud.ops.inspections.slots import last_closed
from cloud.ops.maintenance import repo as maintenance
from cloud.ops.maintenance.completion import Answer, confirm, submit
from cloud.ops.maintenance.contracts import add_contract
from cloud.ops.maintenance.scheduler import run_once
from cloud.ops.maintenance.templates import shipped
from cloud.ops.model.actors import Actor
from cloud.ops.model.policy import Policy
from cloud.ops.workorders import repo as workorders
from cloud.web import photos

log = logging.getLogger(__name__)


def small_png(width: int = 48, height: int = 32, shade: int = 200) -> bytes:
    """A small valid grey PNG (the demo's "photo" and drawn signatures), made here, not shipped."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + bytes([shade]) * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


async def _one(conn: AsyncConnection[Any], sql: str, args: tuple[Any, ...]) -> Any:
    cur = await conn.execute(sql, args)
    row = await cur.fetchone()
    return row[0] if row else None


async def seed_operations(conn: AsyncConnection[Any], policy: Policy, community: str, run_dir: Path,
                          now: datetime) -> bool:
    """Seed once per community; return whether anything was created."""
    if await _one(conn, "SELECT 1 FROM maintenance_plans WHERE community = %s LIMIT 1", (community,)):
        return False
    lift = await _one(conn, "SELECT d.code FROM devices d JOIN communities c ON c.id = d.community_id"
                            " WHERE c.code = %s AND d.kind = 'elevator' ORDER BY d.code LIMIT 1", (community,))
    zone = ZoneInfo(await _one(conn, "SELECT timezone FROM communities WHERE code = %s", (community,))
                    or "Asia/Shanghai")
    staff_user = await _one(conn, "SELECT u.id FROM users u JOIN user_communities uc ON uc.user_id = u.id"
                                  " WHERE uc.community = %s AND u.role = 'engineer' ORDER BY u.id LIMIT 1",
                            (community,))
    field = await _one(conn, "SELECT id FROM butlers WHERE community = %s AND contractor_id IS NOT NULL AND active"
                             " ORDER BY id LIMIT 1", (community,))
    worker = field or await _one(conn, "SELECT id FROM butlers WHERE community = %s AND role = 'butler' AND active"
                                       " AND contractor_id IS NULL ORDER BY id LIMIT 1", (community,))
    if lift is None or staff_user is None or worker is None:
        log.warning("demo operations: %s has no lift, engineer or butler; nothing seeded", community)
        return False
    catalog = shipped()
    today = now.astimezone(zone).date()
    company = await _one(conn, "SELECT contractor_id FROM butlers WHERE id = %s", (field,)) if field else None
    if company is not None:  # the lift contractor's contract: its planned maintenance is routed to it
        await add_contract(conn, contractor_id=company, community=community, skill="elevator", work=["maintenance"],
                           on_site_within=timedelta(hours=24), resolve_within=timedelta(hours=48),
                           starts_on=today - timedelta(days=90), reference="WB-DEMO-01", now=now - timedelta(days=20))
    first_due = today - timedelta(days=12)  # done the day before: the next is due in two days, already open
    await maintenance.create_plan(conn, catalog, community=community, scope="device", target=lift,
                                  template="lift.half_monthly", starts_on=first_due,
                                  now=now - timedelta(days=20), assignee_id=worker)
    past = datetime.combine(first_due - timedelta(days=1), datetime.min.time(), tzinfo=zone) + timedelta(hours=10)
    (wo_id,) = (await run_once(conn, policy, catalog, past - timedelta(hours=1))).opened
    me = Actor.butler(worker)
    for action in ("accept", "arrive"):
        await workorders.transition(conn, policy, wo_id, action, me, past)
    signature = "data:image/png;base64," + base64.b64encode(small_png(96, 32, 30)).decode()
    photo = photos.store(run_dir, community, small_png())
    answers = [Answer(i.id, ok=True if i.check == "pass_fail" else None,
                      value=((i.expected.min or 0) + (i.expected.max or 0)) / 2 if i.expected else None,
                      photo=photo if i.photo else None, note="")
               for i in catalog.get("lift.half_monthly").items]
    await submit(conn, policy, catalog, wo_id, me, answers, signature, past + timedelta(hours=1))
    await confirm(conn, policy, wo_id, Actor("user", staff_user, "demo engineer", "engineer"), signature,
                  past + timedelta(hours=2))
    if await _one(conn, "SELECT 1 FROM devices d JOIN communities c ON c.id = d.community_id WHERE c.code = %s"
                        " AND d.kind = 'pump' LIMIT 1", (community,)):
        await maintenance.create_plan(conn, catalog, community=community, scope="community", target="",
                                      template="pump.monthly", starts_on=today + timedelta(days=10), now=now)
    await run_once(conn, policy, catalog, now)  # the lift's next half-monthly, due 15 days after the last

    route = await inspections.create_route(
        conn, community=community, name="公共区域巡查 / public areas", every_hours=4, grace_minutes=30,
        now=now - timedelta(days=1),
        checkpoints=[inspections.NewCheckpoint("大堂 / lobby"), inspections.NewCheckpoint("地库 / car park"),
                     inspections.NewCheckpoint("水泵房 / pump room", reading_unit="MPa")])
    lobby, garage, pumps = await inspections.checkpoints(conn, route.id)
    butler = Actor.butler(worker)
    closed = last_closed(now, route.every_hours, timedelta(minutes=route.grace_minutes), route.zone)
    slot_start = closed[0]
    latest = True
    while slot_start >= now - timedelta(hours=20):  # the closed slots of the last day, newest first
        at = slot_start + timedelta(minutes=20)
        await record_scan(conn, policy, community, Scan(lobby.code, method="qr"), butler, at)
        await record_scan(conn, policy, community, Scan(pumps.code, reading=0.45), butler, at + timedelta(minutes=9))
        if not latest:  # the car park was missed in the latest closed slot: its alarm is on
            await record_scan(conn, policy, community, Scan(garage.code), butler, at + timedelta(minutes=5))
        latest = False
        slot_start -= timedelta(hours=route.every_hours)
    await check_missed(conn, policy, now)
    log.info("demo operations seeded in %s: lift plan on %s, route %s", community, lift, route.id)
    return True
