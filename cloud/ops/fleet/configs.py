"""The edge-configuration tables (migration 610): versions per gateway, what each gateway reports
it runs, rollouts and their targets. SQL only; the decisions are in :mod:`.rollout`.

Every state change of a target or a rollout is one conditional ``UPDATE … WHERE state = …``,
like the command queue's (:mod:`.repo`): the ticker and the status listener both write, and
neither may move a target backwards (an ``applied`` target never becomes ``failed`` because a
stale report arrived late).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from psycopg import AsyncConnection
from psycopg.rows import class_row
from psycopg.types.json import Jsonb

from device_profiles import Profile
from device_profiles.loader import parse_profile
from guanjia.core.config import load_yaml
from guanjia.core.errors import ConfigError
from guanjia.core.wire_config import ConfigReport


@dataclass(slots=True, frozen=True)
class GatewayRef:
    id: int
    community: str
    code: str


@dataclass(slots=True)
class VersionRow:
    version: str
    created_by: str
    created_at: dt.datetime
    note: str
    files: dict[str, str]


@dataclass(slots=True)
class ConfigStateRow:
    """What a gateway last reported about its configuration (``status.health.config``)."""

    gateway_id: int
    state: str
    running: str | None
    good: str | None
    attempted: str | None
    push: str | None
    reason: str | None
    detail: str
    reported_at: dt.datetime


@dataclass(slots=True)
class RolloutRow:
    id: int
    state: str
    canary: int
    percent: int
    probation_s: float | None
    note: str
    halt_reason: str
    created_by: str
    created_at: dt.datetime
    updated_at: dt.datetime


@dataclass(slots=True)
class TargetRow:
    rollout_id: int
    gateway_id: int
    community: str
    gateway: str
    position: int
    stage: int
    version: str
    push_id: str
    state: str
    reason: str | None
    detail: str
    sent_at: dt.datetime | None
    done_at: dt.datetime | None


# --------------------------------------------------------------------------- gateways and versions

async def gateway_refs(conn: AsyncConnection[Any], ids: list[int], *, all_communities: bool,
                       communities: list[str]) -> list[GatewayRef]:
    """The gateways of ``ids`` the caller may see (an id out of scope is simply absent)."""
    async with conn.cursor(row_factory=class_row(GatewayRef)) as cur:
        await cur.execute(
            "SELECT g.id, c.code AS community, g.code FROM gateways g JOIN communities c ON c.id = g.community_id "
            "WHERE g.id = ANY(%s) AND (%s OR c.code = ANY(%s)) ORDER BY c.code, g.code",
            (ids, all_communities, communities))
        return await cur.fetchall()


async def gateway_by_code(conn: AsyncConnection[Any], community: str, gateway: str) -> int | None:
    cur = await conn.execute(
        "SELECT g.id FROM gateways g JOIN communities c ON c.id = g.community_id WHERE c.code = %s AND g.code = %s",
        (community, gateway))
    row = await cur.fetchone()
    return int(row[0]) if row else None


async def save_version(conn: AsyncConnection[Any], gateway_id: int, version: str, files: dict[str, str], *,
                       by: str, at: dt.datetime, note: str) -> bool:
    """Store a version; False when the gateway already has it (same digest, same files)."""
    cur = await conn.execute(
        "INSERT INTO edge_config_versions (gateway_id, version, files, created_by, created_at, note) "
        "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
        (gateway_id, version, Jsonb(files), by[:100], at, note[:500]))
    return cur.rowcount == 1


async def versions(conn: AsyncConnection[Any], gateway_id: int, limit: int = 20) -> list[VersionRow]:
    async with conn.cursor(row_factory=class_row(VersionRow)) as cur:
        await cur.execute(
            "SELECT version, created_by, created_at, note, files FROM edge_config_versions WHERE gateway_id = %s "
            "ORDER BY created_at DESC, version LIMIT %s", (gateway_id, limit))
        return await cur.fetchall()


async def version_files(conn: AsyncConnection[Any], gateway_id: int, version: str) -> dict[str, str] | None:
    cur = await conn.execute("SELECT files FROM edge_config_versions WHERE gateway_id = %s AND version = %s",
                             (gateway_id, version))
    row = await cur.fetchone()
    return dict(row[0]) if row else None


async def base_files(conn: AsyncConnection[Any], gateway_id: int) -> dict[str, str] | None:
    """What a change is laid over: the gateway's last good version when the cloud has it, else
    its newest stored version (``None``: nothing stored yet; the change must be a whole bundle)."""
    cur = await conn.execute(
        "SELECT v.files FROM edge_config_versions v LEFT JOIN gateway_config_state s ON s.gateway_id = v.gateway_id "
        "WHERE v.gateway_id = %s ORDER BY (v.version = s.good) IS TRUE DESC, v.created_at DESC LIMIT 1",
        (gateway_id,))
    row = await cur.fetchone()
    return dict(row[0]) if row else None


async def running_profiles(conn: AsyncConnection[Any], community: str, gateway: str) -> dict[str, Profile]:
    """The profiles of the version a gateway reports running, by id (empty: it runs none the cloud
    pushed). A command to one of that gateway's devices is checked against these before the shipped
    library, because they are what its agent decodes and writes with. The files were checked when
    they were uploaded; one that no longer parses (a library change since) is left out, and the
    command then meets the shipped profile or ``unknown_profile``."""
    cur = await conn.execute(
        "SELECT v.files FROM edge_config_versions v "
        "JOIN gateway_config_state s ON s.gateway_id = v.gateway_id AND s.running = v.version "
        "JOIN gateways g ON g.id = v.gateway_id JOIN communities c ON c.id = g.community_id "
        "WHERE c.code = %s AND g.code = %s", (community, gateway))
    row = await cur.fetchone()
    profiles: dict[str, Profile] = {}
    for name, text in sorted(dict(row[0]).items()) if row else ():
        if not (name.startswith("profiles/") and name.endswith((".yaml", ".yml"))):
            continue
        try:
            data, lines = load_yaml(text, name)
            profile = parse_profile(data, name, lines)
        except ConfigError:
            continue
        profiles[profile.id] = profile
    return profiles


# --------------------------------------------------------------------------- reports

async def record_report(conn: AsyncConnection[Any], gateway_id: int, report: ConfigReport, at: dt.datetime) -> None:
    await conn.execute(
        "INSERT INTO gateway_config_state (gateway_id, state, running, good, attempted, push, reason, detail, "
        "reported_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT (gateway_id) DO UPDATE SET "
        "state = EXCLUDED.state, running = EXCLUDED.running, good = EXCLUDED.good, attempted = EXCLUDED.attempted, "
        "push = EXCLUDED.push, reason = EXCLUDED.reason, detail = EXCLUDED.detail, reported_at = EXCLUDED.reported_at",
        (gateway_id, report.state, report.running, report.good, report.attempted, report.push, report.reason,
         report.detail, at))


async def config_states(conn: AsyncConnection[Any]) -> dict[int, ConfigStateRow]:
    async with conn.cursor(row_factory=class_row(ConfigStateRow)) as cur:
        await cur.execute("SELECT gateway_id, state, running, good, attempted, push, reason, detail, reported_at "
                          "FROM gateway_config_state")
        return {r.gateway_id: r for r in await cur.fetchall()}


# --------------------------------------------------------------------------- rollouts

_ROLLOUT = ("id, state, canary, percent, probation_s, note, halt_reason, created_by, created_at, updated_at")
_TARGET = """
SELECT t.rollout_id, t.gateway_id, c.code AS community, g.code AS gateway, t.position, t.stage, t.version,
       t.push_id, t.state, t.reason, t.detail, t.sent_at, t.done_at
  FROM config_rollout_targets t JOIN gateways g ON g.id = t.gateway_id JOIN communities c ON c.id = g.community_id
"""


async def create_rollout(conn: AsyncConnection[Any], targets: list[tuple[int, str, int]], *, canary: int,
                         percent: int, probation_s: float | None, note: str, by: str, at: dt.datetime) -> int:
    """``targets``: (gateway id, version, stage) in rollout order."""
    cur = await conn.execute(
        "INSERT INTO config_rollouts (state, canary, percent, probation_s, note, created_by, created_at, updated_at) "
        "VALUES ('running', %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (canary, percent, probation_s, note[:500], by[:100], at, at))
    row = await cur.fetchone()
    assert row is not None
    rollout_id = int(row[0])
    async with conn.cursor() as c:
        await c.executemany(
            "INSERT INTO config_rollout_targets (rollout_id, gateway_id, position, stage, version, push_id) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [(rollout_id, gw, pos, stage, version, f"r{rollout_id}-g{gw}") for pos, (gw, version, stage)
             in enumerate(targets)])
    return rollout_id


async def rollouts(conn: AsyncConnection[Any], *, all_communities: bool, communities: list[str],
                   running_only: bool = False, rollout_id: int | None = None, limit: int = 50) -> list[RolloutRow]:
    """Newest first; a rollout is visible to a caller who may see every one of its gateways."""
    async with conn.cursor(row_factory=class_row(RolloutRow)) as cur:
        await cur.execute(
            f"SELECT {_ROLLOUT} FROM config_rollouts r WHERE (NOT %(running)s OR state = 'running') "
            "AND (%(id)s::bigint IS NULL OR id = %(id)s) AND (%(all)s OR NOT EXISTS ("
            "  SELECT 1 FROM config_rollout_targets t JOIN gateways g ON g.id = t.gateway_id "
            "  JOIN communities c ON c.id = g.community_id WHERE t.rollout_id = r.id AND c.code <> ALL(%(cs)s))) "
            "ORDER BY id DESC LIMIT %(limit)s",
            {"running": running_only, "id": rollout_id, "all": all_communities, "cs": communities, "limit": limit})
        return await cur.fetchall()


async def targets(conn: AsyncConnection[Any], rollout_id: int) -> list[TargetRow]:
    async with conn.cursor(row_factory=class_row(TargetRow)) as cur:
        await cur.execute(_TARGET + " WHERE t.rollout_id = %s ORDER BY t.position", (rollout_id,))
        return await cur.fetchall()


async def settle_version(conn: AsyncConnection[Any], gateway_id: int, version: str, to: str, at: dt.datetime, *,
                         push: str | None, whole_version: bool, reason: str | None = None, detail: str = "") -> int:
    """Give the edge's verdict on ``version`` to its pushes, in one statement: the reported push
    (``push``, sent or waiting for its report) and, when ``whole_version``, every other push of
    the version to ``gateway_id`` still ``sent`` — the edge judges a version once, so a second
    rollout that pushed it while the first one's push was on probation gets no report of its own.
    A refusal answers only its own push (``whole_version`` False). The gateway and version in the
    condition also keep a report from settling another gateway's push or another version."""
    cur = await conn.execute(
        "UPDATE config_rollout_targets SET state = %(to)s, reason = %(reason)s, detail = %(detail)s, "
        "done_at = %(at)s WHERE gateway_id = %(gw)s AND version = %(v)s "
        "AND ((push_id = %(push)s AND state IN ('sent', 'waiting')) OR (%(all)s AND state = 'sent'))",
        {"to": to, "reason": reason, "detail": detail[:500], "at": at, "gw": gateway_id, "v": version,
         "push": push, "all": whole_version})
    return cur.rowcount


async def move_target(conn: AsyncConnection[Any], push_id: str, frm: tuple[str, ...], to: str, at: dt.datetime, *,
                      reason: str | None = None, detail: str = "") -> bool:
    sent = at if to == "sent" else None
    cur = await conn.execute(
        "UPDATE config_rollout_targets SET state = %s, reason = %s, detail = %s, "
        "sent_at = coalesce(%s, sent_at), done_at = CASE WHEN %s IN ('applied', 'failed') THEN %s END "
        "WHERE push_id = %s AND state = ANY(%s)",
        (to, reason, detail[:500], sent, to, at, push_id, list(frm)))
    return cur.rowcount == 1


async def skip_failed(conn: AsyncConnection[Any], rollout_id: int, at: dt.datetime) -> int:
    cur = await conn.execute("UPDATE config_rollout_targets SET state = 'skipped', done_at = %s "
                             "WHERE rollout_id = %s AND state = 'failed'", (at, rollout_id))
    return cur.rowcount


async def move_rollout(conn: AsyncConnection[Any], rollout_id: int, frm: tuple[str, ...], to: str, at: dt.datetime,
                       reason: str = "") -> bool:
    cur = await conn.execute(
        "UPDATE config_rollouts SET state = %s, halt_reason = %s, updated_at = %s WHERE id = %s AND state = ANY(%s)",
        (to, reason[:500], at, rollout_id, list(frm)))
    return cur.rowcount == 1
