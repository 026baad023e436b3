"""A synthetic estate for the web benchmark and the web tests: communities, buildings, gateways,
devices, ``days`` of hourly rollups (and optionally minute rollups), last values, alarms, butlers,
work orders with trails and ratings.

Rows are generated inside PostgreSQL (``generate_series``), not in Python: 1,000 devices × 30 days
of hourly buckets × 4 metrics is ~3 million rows, which the server writes in seconds. Counters
grow linearly (so health-record deltas are exact), gauges follow a daily sine; every tenth
meter uses 20 % more energy in the last week (to show the baseline warning).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from psycopg import AsyncConnection

# (kind, metric, unit, counter?, base, rate per hour or amplitude)
METRICS: list[tuple[str, str, str, bool, float, float]] = [
    ("elevator", "run_count", "", True, 10_000, 20),
    ("elevator", "door_cycles", "", True, 25_000, 45),
    ("elevator", "run_hours", "h", True, 3_000, 0.5),
    ("elevator", "load_percent", "%", False, 35, 25),
    ("pump", "outlet_pressure", "bar", False, 3.5, 0.4),
    ("pump", "start_count", "", True, 800, 1),
    ("pump", "run_hours", "h", True, 5_000, 0.6),
    ("pump", "energy", "kWh", True, 20_000, 2),
    ("gate", "passages_in", "", True, 50_000, 30),
    ("gate", "passages_out", "", True, 50_000, 29),
    ("meter", "power", "W", False, 4_000, 1_500),
    ("meter", "energy_total", "kWh", True, 100_000, 4),
]
KINDS = ("elevator", "pump", "gate", "meter")
CHART_METRIC = {"elevator": "load_percent", "pump": "outlet_pressure", "gate": "passages_in", "meter": "power"}


@dataclass(slots=True)
class World:
    communities: list[str]
    device_ids: dict[str, list[int]] = field(default_factory=dict)  # per community
    gateway_ids: dict[str, int] = field(default_factory=dict)
    butler_ids: dict[str, list[int]] = field(default_factory=dict)
    work_order_ids: dict[str, list[int]] = field(default_factory=dict)
    alarm_ids: dict[str, list[int]] = field(default_factory=dict)


async def build_world(conn: AsyncConnection[Any], communities: list[str], *, devices_per_community: int = 8,
                      buildings_per_community: int = 2, days: int = 30, minute_days: int = 1,
                      butler_users: dict[str, list[int]] | None = None, work_orders_per_community: int = 6,
                      now: dt.datetime | None = None) -> World:
    """Create the estate; ``butler_users`` maps community → user ids that get butler records."""
    now = (now or dt.datetime.now(dt.UTC)).replace(minute=0, second=0, microsecond=0)
    world = World(list(communities))
    async with conn.cursor() as cur:
        await cur.executemany("INSERT INTO metrics (name, unit) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                              list({(m[1], m[2]) for m in METRICS}))
        for ci, code in enumerate(communities):
            await cur.execute("INSERT INTO communities (code, name, lat, lon) VALUES (%s, %s, %s, %s) RETURNING id",
                              (code, f"{code} 花园", 31.2 + ci * 0.05, 121.4 + ci * 0.05))
            row = await cur.fetchone()
            assert row is not None
            community_id = row[0]
            await cur.execute(
                "INSERT INTO buildings (community_id, code, name, floors, lat, lon)"
                " SELECT %s, 'b' || i, i || '号楼', 18 + i, %s + i * 0.001, %s + i * 0.001"
                "   FROM generate_series(1, %s) i",
                (community_id, 31.2 + ci * 0.05, 121.4 + ci * 0.05, buildings_per_community))
            status = {"outbox": {"depth": 12, "bytes": 40960},
                      "poll": {"request_time": {"p50_ms": 8.5, "p99_ms": 41.0}}, "request_errors": 3,
                      "poll_errors": 1, "uptime_s": 86400}
            await cur.execute(
                "INSERT INTO gateways (community_id, code, name, online, last_seen, status, trusted)"
                " VALUES (%s, 'gw-1', %s, true, %s, %s::jsonb, true) RETURNING id",
                (community_id, f"{code} 机房网关", now, _json(status)))
            row = await cur.fetchone()
            assert row is not None
            world.gateway_ids[code] = row[0]
            await cur.execute(
                """INSERT INTO devices (community_id, gateway_id, building_id, code, name, kind, floor, lat, lon)
                   SELECT %(c)s, %(g)s, b.id, (ARRAY['elev','pump','gate','meter'])[i %% 4 + 1] || '-' || i,
                          (ARRAY['电梯','水泵','门禁','电表'])[i %% 4 + 1] || ' ' || i,
                          (ARRAY['elevator','pump','gate','meter'])[i %% 4 + 1],
                          CASE WHEN i %% 4 = 1 THEN -1 ELSE 1 + (i * 7) %% b.floors END,
                          b.lat + (i %% 10) * 0.0001, b.lon + (i / 10) * 0.0001
                     FROM generate_series(0, %(n)s - 1) i
                     JOIN LATERAL (SELECT id, floors, lat, lon FROM buildings WHERE community_id = %(c)s
                                    ORDER BY code OFFSET (i %% %(nb)s) LIMIT 1) b ON true
                   RETURNING id""",
                {"c": community_id, "g": world.gateway_ids[code], "n": devices_per_community,
                 "nb": buildings_per_community})
            world.device_ids[code] = [r[0] for r in await cur.fetchall()]
        await _series(conn, now, days, minute_days)
        for code in communities:
            world.alarm_ids[code] = await _alarms(conn, code, now)
            world.butler_ids[code] = await _butlers(conn, code, (butler_users or {}).get(code, []))
            world.work_order_ids[code] = await _work_orders(conn, code, world.butler_ids[code], now,
                                                            work_orders_per_community)
    return world


def _json(doc: dict[str, Any]) -> str:
    import orjson

    return orjson.dumps(doc).decode()


_SPEC = "(VALUES " + ", ".join(
    f"('{k}', '{m}', {'true' if c else 'false'}, {b}::float8, {r}::float8)" for k, m, _u, c, b, r in METRICS
) + ") AS s(kind, metric, counter, base, rate)"


async def _series(conn: AsyncConnection[Any], now: dt.datetime, days: int, minute_days: int) -> None:
    start = now - dt.timedelta(days=days)
    # hourly rollups: counters c(h) = base + id + rate*h (min c(h), max c(h+1)); gauges: daily sine
    await conn.execute(f"""
        INSERT INTO telemetry_1h (bucket, device_id, metric_id, avg_value, min_value, max_value, n)
        SELECT b, d.id, m.id,
               CASE WHEN s.counter THEN s.base + d.id + k * h + k * 0.5
                    ELSE s.base + s.rate * sin(2 * pi() * (h + d.id) / 24.0) END,
               CASE WHEN s.counter THEN s.base + d.id + k * h
                    ELSE s.base + s.rate * sin(2 * pi() * (h + d.id) / 24.0) - s.rate * 0.1 END,
               CASE WHEN s.counter THEN s.base + d.id + k * (h + 1)
                    ELSE s.base + s.rate * sin(2 * pi() * (h + d.id) / 24.0) + s.rate * 0.1 END,
               60
          FROM devices d
          JOIN {_SPEC} ON s.kind = d.kind
          JOIN metrics m ON m.name = s.metric
          CROSS JOIN generate_series(%(start)s::timestamptz, %(end)s::timestamptz, interval '1 hour') b
          CROSS JOIN LATERAL (SELECT extract(epoch FROM b - %(start)s::timestamptz) / 3600 AS h) hh
          CROSS JOIN LATERAL (SELECT s.rate * CASE WHEN d.kind = 'meter' AND d.id %% 10 = 0
                                                    AND b >= %(end)s::timestamptz - interval '7 days'
                                               THEN 1.2 ELSE 1 END AS k) kk
         WHERE NOT EXISTS (SELECT 1 FROM telemetry_1h x WHERE x.device_id = d.id LIMIT 1)
    """, {"start": start, "end": now - dt.timedelta(hours=1)})
    if minute_days > 0:
        await conn.execute(f"""
            INSERT INTO telemetry_1m (bucket, device_id, metric_id, avg_value, min_value, max_value, n)
            SELECT b, d.id, m.id, v, v - s.rate * 0.02, v + s.rate * 0.02, 1
              FROM devices d
              JOIN {_SPEC} ON s.kind = d.kind AND NOT s.counter
              JOIN metrics m ON m.name = s.metric
              CROSS JOIN generate_series(%(start)s::timestamptz, %(end)s::timestamptz, interval '1 minute') b
              CROSS JOIN LATERAL (SELECT s.base + s.rate * sin(2 * pi() * (extract(epoch FROM b) / 3600 + d.id) / 24.0)
                                         + s.rate * 0.05 * random() AS v) vv
             WHERE NOT EXISTS (SELECT 1 FROM telemetry_1m x WHERE x.device_id = d.id LIMIT 1)
        """, {"start": now - dt.timedelta(days=minute_days), "end": now})
    await conn.execute(f"""
        INSERT INTO telemetry_last (device_id, metric_id, time, value, quality)
        SELECT d.id, m.id, %(now)s,
               CASE WHEN s.counter THEN s.base + d.id + s.rate * %(hours)s ELSE s.base END, 0
          FROM devices d JOIN {_SPEC} ON s.kind = d.kind JOIN metrics m ON m.name = s.metric
        ON CONFLICT (device_id, metric_id) DO NOTHING
    """, {"now": now, "hours": days * 24.0})


async def _alarms(conn: AsyncConnection[Any], community: str, now: dt.datetime) -> list[int]:
    cur = await conn.execute("""
        INSERT INTO alarms (community, gateway, device, rule, source, severity, device_kind, building, active,
                            message, raised_at, last_raised_at, last_event_ms, updated_at, work_order)
        SELECT c.code, 'gw-1', d.code, 'synthetic_fault', 'edge', 'major', d.kind, b.code, true,
               'synthetic fault for the dashboard', %(now)s, %(now)s, 0, %(now)s, true
          FROM devices d JOIN communities c ON c.id = d.community_id LEFT JOIN buildings b ON b.id = d.building_id
         WHERE c.code = %(c)s AND d.id %% 10 = 3
        RETURNING id""", {"c": community, "now": now})
    return [r[0] for r in await cur.fetchall()]


async def _butlers(conn: AsyncConnection[Any], community: str, user_ids: list[int]) -> list[int]:
    ids = []
    for i, user_id in enumerate([*user_ids, None]):
        cur = await conn.execute(
            "INSERT INTO butlers (user_id, name, phone, community, skills, star_level)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id",
            (user_id, f"管家{community}-{i}", f"1380000{i:04d}", community,
             ["elevator", "water", "electrical", "access", "general"], 4))
        row = await cur.fetchone()
        assert row is not None
        ids.append(row[0])
    return ids


async def _work_orders(conn: AsyncConnection[Any], community: str, butler_ids: list[int], now: dt.datetime,
                       count: int) -> list[int]:
    states = ["assigned", "accepted", "on_site", "resolved", "closed", "assigned"]
    ids = []
    cur = await conn.execute(
        "SELECT d.code, d.kind, b.code FROM devices d JOIN communities c ON c.id = d.community_id"
        " LEFT JOIN buildings b ON b.id = d.building_id WHERE c.code = %s ORDER BY d.id", (community,))
    devices = await cur.fetchall()
    for i in range(count):
        state = states[i % len(states)]
        device, kind, building = devices[i % len(devices)] if devices else (None, None, None)
        created = now - dt.timedelta(hours=2 * i + 1)
        accepted = created + dt.timedelta(minutes=10 + 30 * i) if state not in ("assigned",) else None
        on_site = created + dt.timedelta(minutes=40 + 30 * i) if state in ("on_site", "resolved", "closed") else None
        resolved = created + dt.timedelta(minutes=90 + 30 * i) if state in ("resolved", "closed") else None
        cur = await conn.execute(
            """INSERT INTO work_orders (community, building, device, device_kind, skill, origin, title, description,
                   location, priority, state, assignee_id, respond_due, on_site_due, resolve_due, accepted_at,
                   on_site_at, resolved_at, created_at, updated_at)
               VALUES (%s, %s, %s, %s, 'general', 'staff', %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
               RETURNING id""",
            (community, building, device, kind, f"检修 {device}", "synthetic work order", f"{building} 大堂",
             "P1" if i % 2 else "P2", state, butler_ids[i % len(butler_ids)] if butler_ids else None,
             created + dt.timedelta(hours=2), created + dt.timedelta(hours=24), created + dt.timedelta(hours=48),
             accepted, on_site, resolved, created, now))
        row = await cur.fetchone()
        assert row is not None
        ids.append(row[0])
        await conn.execute(
            "INSERT INTO work_order_trail (work_order_id, at, action, from_state, to_state, actor, note)"
            " VALUES (%s, %s, 'create', NULL, 'new', 'system', 'synthetic')", (row[0], created))
        if state in ("resolved", "closed"):
            await conn.execute(
                "INSERT INTO work_order_ratings (work_order_id, butler_id, stars, comment, created_at)"
                " VALUES (%s, %s, %s, '', %s)", (row[0], butler_ids[i % len(butler_ids)] if butler_ids else None,
                                                 3 + i % 3, now))
    return ids
