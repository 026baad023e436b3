"""A small community with one device of each kind (lift, pump, meter, gate), their last values,
rollups with known counter growth (one counter reset) and a gateway that reports its health:
what the device-page tests (read model, API, browser) check words, units, bands and figures on.

Values are chosen so the expected texts are exact: the lift's door is closed (门: 关闭), its fault
is "passengers trapped" (困人 (1)), two alarm bits are set; the pump runs with fault 0x2310; the
meter's energy counter was reset 10 hours ago; the gate is open.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import orjson
from psycopg import AsyncConnection

from cloud.db.rollups import floor_to

HOUR = dt.timedelta(hours=1)

LAST: dict[str, dict[str, float]] = {
    "lift": {"door_state": 0, "car_moving": 1, "floor": 7, "speed": 1.234, "fault_code": 1,
             "alarm_word": 0b11, "run_count": 123456, "load_percent": 40},
    "pump": {"running": 1, "outlet_pressure": 4.567, "fault_code": 0x2310, "motor_temperature": 41.26,
             "start_count": 880, "pump_alarms": 0},
    "meter": {"voltage_l1": 229.87, "power_total": 5123.4, "energy_total": 52.5, "power_factor": 0.93},
    "gate": {"door_state": 1, "lock_state": 1, "passages_in": 40100, "tamper": 0},
}
KIND = {"lift": ("elevator", "elevator-gbt24476"), "pump": ("pump", "vfd-pump"), "meter": ("meter", "eastron-sdm630"),
        "gate": ("gate", "access-gate")}
GATEWAY_HEALTH: dict[str, Any] = {
    "agent_version": "0.1.0", "config_version": "3f2a9c1b7d4e", "errors_1h": 3, "devices_offline": 1,
    "outbox": {"alarms_messages": 0, "events_messages": 2, "telemetry_messages": 40},
    "poll": {"lateness": {"p50_ms": 2.0, "p99_ms": 37.5}, "request_errors": 12},
}


@dataclass(slots=True)
class Pages:
    community: str
    gateway_id: int
    devices: dict[str, int]
    now: dt.datetime


async def _metric(conn: AsyncConnection[Any], name: str) -> int:
    cur = await conn.execute("INSERT INTO metrics (name) VALUES (%s)"
                             " ON CONFLICT (name) DO UPDATE SET name = excluded.name RETURNING id", (name,))
    row = await cur.fetchone()
    assert row is not None
    return int(row[0])


async def _hourly(conn: AsyncConnection[Any], device: int, metric: int, rows: list[tuple[dt.datetime, float, float]],
                  table: str = "telemetry_1h") -> None:
    async with conn.cursor() as cur:
        await cur.executemany(
            f"INSERT INTO {table} (bucket, device_id, metric_id, avg_value, min_value, max_value, n)"
            " VALUES (%s, %s, %s, %s, %s, %s, 60)",
            [(bucket, device, metric, (lo + hi) / 2, lo, hi) for bucket, lo, hi in rows])


async def seed(conn: AsyncConnection[Any], community: str, now: dt.datetime) -> Pages:
    """The community (which ``make_user`` may already have created), its gateway and four devices."""
    cur = await conn.execute(
        "INSERT INTO communities (code, name, timezone) VALUES (%s, %s, 'Asia/Shanghai')"
        " ON CONFLICT (code) DO UPDATE SET timezone = 'Asia/Shanghai' RETURNING id", (community, "阳光花园"))
    row = await cur.fetchone()
    assert row is not None
    cid = row[0]
    cur = await conn.execute(
        "INSERT INTO gateways (community_id, code, name, online, last_seen, status) VALUES (%s, 'gw-1', '一号网关',"
        " true, %s, %s) RETURNING id", (cid, now, orjson.dumps(GATEWAY_HEALTH).decode()))
    row = await cur.fetchone()
    assert row is not None
    gateway_id = row[0]
    devices: dict[str, int] = {}
    for code, (kind, profile) in KIND.items():
        cur = await conn.execute(
            "INSERT INTO devices (community_id, gateway_id, code, name, kind, profile_id)"
            " VALUES (%s, %s, %s, %s, %s, %s) RETURNING id", (cid, gateway_id, code, code, kind, profile))
        row = await cur.fetchone()
        assert row is not None
        devices[code] = row[0]
        for name, value in LAST[code].items():
            metric = await _metric(conn, name)
            await conn.execute("INSERT INTO telemetry_last (device_id, metric_id, time, value) VALUES (%s, %s, %s, %s)",
                               (devices[code], metric, now - dt.timedelta(seconds=5), value))
    top = floor_to(now, HOUR)
    hours = [top - HOUR * i for i in range(48, 0, -1)]
    # the lift made 10 trips an hour for two days: 240 in the last 24 h
    trips = await _metric(conn, "run_count")
    await _hourly(conn, devices["lift"], trips, [(b, 123456 - 10 * (48 - i), 123456 - 10 * (47 - i))
                                                 for i, b in enumerate(hours)])
    # the meter's energy grew 2.5 kWh an hour and was reset 10 hours ago (a replaced meter board):
    # 24 h growth = 14 h x 2.5 before the reset + 10 h x 2.5 after it (from 0 to 25) = 60 kWh
    energy = await _metric(conn, "energy_total")
    rows = []
    for i, bucket in enumerate(hours):
        age = 48 - i  # hours ago the bucket started
        if age > 10:
            lo = 1000 + 2.5 * (48 - age)
            rows.append((bucket, lo, lo + 2.5))
        elif age == 10:
            rows.append((bucket, 0.0, 2.5))
        else:
            rows.append((bucket, 2.5 * (10 - age), 2.5 * (11 - age)))
    await _hourly(conn, devices["meter"], energy, rows)
    # a day of minutes: the lift's door (state bands) and the pump's pressure (a line)
    minute = dt.timedelta(minutes=1)
    start = floor_to(now, minute) - dt.timedelta(hours=23)
    door = await _metric(conn, "door_state")
    await _hourly(conn, devices["lift"], door, [(start + minute * i, float(i // 30 % 2), float(i // 30 % 2))
                                                for i in range(23 * 60)], "telemetry_1m")
    await _hourly(conn, devices["gate"], door, [(start + minute * i, float(i // 45 % 2), float(i // 45 % 2))
                                                for i in range(23 * 60)], "telemetry_1m")
    pressure = await _metric(conn, "outlet_pressure")
    await _hourly(conn, devices["pump"], pressure, [(start + minute * i, 4.0 + (i % 60) / 100, 4.2 + (i % 60) / 100)
                                                    for i in range(23 * 60)], "telemetry_1m")
    power = await _metric(conn, "power_total")
    await _hourly(conn, devices["meter"], power, [(start + minute * i, 4000.0 + i, 4100.0 + i)
                                                  for i in range(23 * 60)], "telemetry_1m")
    # the lift's entrapment alarm (its message in English and, as a label, in Chinese, as the edge
    # renders them) and its work order
    cur = await conn.execute(
        """INSERT INTO alarms (community, gateway, device, rule, source, severity, device_kind, active, message,
                               labels, raised_at, last_raised_at, last_event_ms, updated_at, work_order)
           VALUES (%(c)s, 'gw-1', 'lift', 'elevator-passengers-trapped', 'edge', 'critical', 'elevator', true,
                   'lift: passengers trapped at floor 7 (door closed)',
                   '{"message_zh": "lift：7 层困人（门状态 closed）"}', %(now)s, %(now)s, 0, %(now)s, true)
           RETURNING id""", {"c": community, "now": now})
    row = await cur.fetchone()
    assert row is not None
    await conn.execute(
        """INSERT INTO work_orders (community, device, device_kind, skill, origin, title, description, priority,
                                    state, alarm_id, respond_due, on_site_due, resolve_due, created_at, updated_at)
           VALUES (%(c)s, 'lift', 'elevator', 'elevator', 'alarm', 'lift: passengers trapped at floor 7',
                   'entrapment', 'P0', 'new', %(alarm)s, %(now)s, %(now)s, %(now)s, %(now)s, %(now)s)""",
        {"c": community, "alarm": row[0], "now": now})
    return Pages(community=community, gateway_id=gateway_id, devices=devices, now=now)
