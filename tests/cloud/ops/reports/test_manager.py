"""The manager's report against a real PostgreSQL on a pinned clock: its figures, and that a past
period's report is the same whenever it is generated (later events do not leak in)."""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from cloud.ops.alarms.lifecycle import apply_event
from cloud.ops.inspections import repo as insp_repo
from cloud.ops.inspections.rounds import Scan, record_scan
from cloud.ops.maintenance import repo as mnt_repo
from cloud.ops.maintenance.completion import Answer, confirm, submit
from cloud.ops.maintenance.scheduler import run_once
from cloud.ops.maintenance.templates import shipped
from cloud.ops.model.actors import Actor
from cloud.ops.model.alarms import AlarmEvent
from cloud.ops.model.policy import Policy
from cloud.ops.reports import pdf, repo
from cloud.ops.reports.company import build_company
from cloud.ops.reports.manager import bounds, build, tables, to_csv
from cloud.ops.reports.targets import Target
from cloud.ops.reports.tariffs import shipped as tariff
from cloud.ops.workorders import repo as wo_repo
from guanjia.core.clock import to_ms
from tests.support.reports import hourly_energy, meter_baseline
from tests.support.workorders import add_butler

SHANGHAI = ZoneInfo("Asia/Shanghai")
SIGNATURE = "data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 32).decode()


def local(month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2027, month, day, hour, minute, tzinfo=SHANGHAI).astimezone(UTC)


def test_period_bounds_are_local() -> None:
    assert bounds("month", date(2027, 1, 17), SHANGHAI)[2:] == (local(1, 1, 0), local(2, 1, 0))
    assert bounds("week", date(2027, 1, 31), SHANGHAI)[:2] == (date(2027, 1, 25), date(2027, 2, 1))
    assert bounds("month", date(2028, 2, 10), SHANGHAI)[:2] == (date(2028, 2, 1), date(2028, 3, 1))
    assert bounds("month", date(2026, 12, 31), SHANGHAI)[:2] == (date(2026, 12, 1), date(2027, 1, 1))


async def _energy(conn: psycopg.AsyncConnection[Any], device_id: int, hours: int) -> None:
    await hourly_energy(conn, device_id, local(1, 31, 0), hours)  # 1 kWh an hour from local 31 Jan 00:00


async def test_monthly_report_figures_and_reproducibility(full: Any, policy: Policy) -> None:
    conn, _, _ = full
    catalog = shipped()
    butler = (await (await conn.execute("SELECT id FROM butlers WHERE name = '王师傅'")).fetchone())[0]
    lead = await add_butler(conn, "李主管", community="cp", role="team_lead")
    cur = await conn.execute(
        "INSERT INTO devices (community_id, gateway_id, building_id, code, kind) SELECT community_id, gateway_id,"
        " building_id, 'm-1', 'meter' FROM devices WHERE code = 'lift-1' RETURNING id")
    meter = (await cur.fetchone() or (0,))[0]
    await _energy(conn, meter, 30)  # through 1 Feb 05:00 local

    await mnt_repo.create_plan(conn, catalog, community="cp", scope="device", target="lift-1",
                               template="lift.half_monthly", starts_on=date(2027, 1, 20), now=local(1, 1, 0),
                               assignee_id=butler)
    wo_id, = (await run_once(conn, policy, catalog, local(1, 18, 9))).opened
    me = Actor.butler(butler)
    for action in ("accept", "arrive"):
        await wo_repo.transition(conn, policy, wo_id, action, me, local(1, 19, 10))
    answers = [Answer(i.id, ok=True if i.check == "pass_fail" else None,
                      value=(0.3 if i.unit == "mm" else 1.0) if i.check == "reading" else None,
                      photo="/photos/cp/p.jpg" if i.photo else None) for i in catalog.get("lift.half_monthly").items]
    await submit(conn, policy, catalog, wo_id, me, answers, SIGNATURE, local(1, 19, 11))
    await confirm(conn, policy, wo_id, Actor.butler(lead), SIGNATURE, local(1, 19, 12))
    route = await insp_repo.create_route(conn, community="cp", name="公共区域", every_hours=12, grace_minutes=0,
                                         checkpoints=[insp_repo.NewCheckpoint("大堂")], now=local(1, 31, 8))
    code = (await insp_repo.checkpoints(conn, route.id))[0].code
    await record_scan(conn, policy, "cp", Scan(code), me, local(1, 31, 9))

    first = await build(conn, "cp", "month", date(2027, 1, 5), tariff(), local(2, 2, 9))
    assert first["final"] is True
    document = pdf.render(first)
    assert document.startswith(b"%PDF")
    assert b"/FontFile2" in document  # the CJK font is embedded (subset), not referenced
    assert (first["start"], first["end"], first["timezone"]) == ("2027-01-01", "2027-01-31", "Asia/Shanghai")
    assert first["work_orders"] == [{"origin": "planned", "priority": "P3", "opened": 1}]
    assert first["sla"]["opened"] == 1
    assert first["sla"]["resolved"] == 1
    assert first["sla"]["resolve_ratio"] == 1.0
    assert first["sla"]["mtta_min"] == 25 * 60.0  # opened 18 Jan 09:00, accepted 19 Jan 10:00
    assert first["maintenance"] == [{"template": "lift.half_monthly", "due": 1, "on_time": 1, "late": 0,
                                     "not_done": 0}]
    assert first["inspections"] == [{"day": "2027-01-31", "route": "公共区域", "expected": 2, "covered": 1,
                                     "ratio": 0.5}]
    (energy,) = first["energy"]
    assert (energy["device"], energy["building"], energy["kwh"], energy["cost"]) == ("m-1", "b7", "24.000", "15.36")

    # February happens: more energy, another order, another scan, the next maintenance — January stays
    await record_scan(conn, policy, "cp", Scan(code), me, local(2, 1, 9))
    await wo_repo.open_order(conn, policy, wo_repo.NewOrder(community="cp", title="x", origin="staff",
                                                            priority="P2"), local(2, 1, 10), me)
    await run_once(conn, policy, catalog, local(2, 3, 0))
    again = await build(conn, "cp", "month", date(2027, 1, 31), tariff(), local(3, 15, 9))
    assert again.pop("generated_at") != first.pop("generated_at")
    assert again == first

    week = await build(conn, "cp", "week", date(2027, 1, 31), tariff(), local(2, 2, 9))
    assert (week["start"], week["end"]) == ("2027-01-25", "2027-01-31")
    assert week["energy"][0]["cost"] == "15.36"
    ongoing = await build(conn, "cp", "day", date(2027, 2, 1), tariff(), local(2, 1, 3, 30))
    assert ongoing["final"] is False
    assert ongoing["energy"][0]["kwh"] == "4.000"  # 00:00–04:00 local

    csv_text = to_csv(tables(first)["energy"])
    assert csv_text.splitlines()[0].startswith("device,building,kwh,kwh_peak")
    assert "m-1,b7,24.000" in csv_text


async def test_energy_baseline_target_savings_availability_and_reproducibility(full: Any, policy: Policy) -> None:
    conn, _, _ = full
    cur = await conn.execute(
        "INSERT INTO devices (community_id, gateway_id, building_id, code, kind) SELECT community_id, gateway_id,"
        " building_id, 'm-1', 'meter' FROM devices WHERE code = 'lift-1' RETURNING id")
    meter = (await cur.fetchone() or (0,))[0]
    await _energy(conn, meter, 30)  # 1 kWh an hour from local 31 Jan 00:00 through 1 Feb 05:00
    await meter_baseline(conn, meter, 1.25, local(1, 1, 0))  # trained on December
    await repo.set_target(conn, Target("cp", None, "month", Decimal("20"), date(2027, 1, 1)), local(1, 1, 0))
    await repo.set_target(conn, Target("cp", "b7", "month", Decimal("31"), date(2027, 1, 1)), local(1, 1, 0))
    # the lift stops (critical) on 31 Jan 20:00 and is back at 22:30: 2.5 h down
    stop = AlarmEvent(community="cp", device="lift-1", rule="lift_stopped", state="raise", ts=to_ms(local(1, 31, 20)),
                      severity="critical", device_kind="elevator", building="b7")
    await apply_event(conn, policy, stop, local(1, 31, 20))
    await apply_event(conn, policy, replace(stop, state="clear", ts=to_ms(local(1, 31, 22, 30))), local(1, 31, 22, 30))

    # a complaint filed 30 Jan, handled in time on the 31st, closed in February (after the period)
    await conn.execute(
        "INSERT INTO complaints (community, grade, text, state, handle_due, close_due, created_at, updated_at,"
        " handled_at, closed_at) VALUES ('cp', 'general', '噪音', 'closed', %s, %s, %s, %s, %s, %s)",
        (local(1, 31, 12), local(2, 5, 12), local(1, 30, 9), local(2, 3, 9), local(1, 31, 10), local(2, 3, 9)))

    first = await build(conn, "cp", "month", date(2027, 1, 5), tariff(), local(2, 2, 9))
    company = await build_company(conn, None, "month", date(2027, 1, 5), tariff(), local(2, 2, 9))
    assert company["complaints"][0]["received"] == 1
    assert first["complaints"] == [{"grade": "general", "received": 1, "handled": 1, "handled_in_time": 1,
                                    "handle_judged": 1, "closed": 0, "closed_in_time": 0, "close_judged": 0,
                                    "close_days": None}]
    (m1,) = first["energy"]
    # 24 kWh on Sunday 31 Jan → 15.36; baseline 30 kWh → 19.21 (by hand in test_energy)
    assert (m1["kwh"], m1["cost"], m1["baseline_kwh"], m1["baseline_cost"]) == ("24.000", "15.36", "30.000", "19.21")
    assert (m1["savings_kwh"], m1["savings_cost"], m1["baseline_deviation_pct"]) == ("6.000", "3.85", "-20.0")
    (b7,) = first["energy_buildings"]
    assert (b7["building"], b7["target_kwh"], b7["target_deviation_pct"]) == ("b7", "31.000", "-22.6")
    assert (first["energy_total"]["target_kwh"], first["energy_total"]["target_deviation_pct"]) == ("20.000", "20.0")
    lift = next(a for a in first["availability"] if a["kind"] == "elevator")
    assert (lift["devices"], lift["faults"], lift["down_hours"]) == (1, 1, 2.5)
    assert lift["availability"] == round(1 - 2.5 / (31 * 24), 4)
    day = await build(conn, "cp", "day", date(2027, 1, 31), tariff(), local(2, 2, 9))
    assert day["energy_total"]["target_kwh"] == "0.645"  # 20 / 31, pro rata
    assert tables(first)["energy_total"][0]["savings_cost"] == "3.85"
    assert pdf.render(first).startswith(b"%PDF")

    # later: analytics retrains (window ending in February), the targets change from February on,
    # the lift flaps again — January's report stays the same
    await meter_baseline(conn, meter, 3.0, local(2, 1, 6))
    await repo.set_target(conn, Target("cp", None, "month", Decimal("99"), date(2027, 2, 1)), local(2, 1, 8))
    await apply_event(conn, policy, replace(stop, ts=to_ms(local(2, 1, 9))), local(2, 1, 9))
    again = await build(conn, "cp", "month", date(2027, 1, 31), tariff(), local(3, 15, 9))
    assert again.pop("generated_at") != first.pop("generated_at")
    assert again == first
    company_again = await build_company(conn, None, "month", date(2027, 1, 31), tariff(), local(3, 15, 9))
    assert company_again.pop("generated_at") != company.pop("generated_at")
    assert company_again == company


async def test_company_report_rows_and_totals(full: Any, policy: Policy) -> None:
    conn, _, _ = full
    await conn.execute("INSERT INTO communities (code, timezone) VALUES ('cq', 'Asia/Shanghai')")
    cur = await conn.execute(
        "INSERT INTO devices (community_id, gateway_id, building_id, code, kind) SELECT community_id, gateway_id,"
        " building_id, 'm-1', 'meter' FROM devices WHERE code = 'lift-1' RETURNING id")
    await _energy(conn, (await cur.fetchone() or (0,))[0], 30)
    cur = await conn.execute("INSERT INTO devices (community_id, code, kind) SELECT id, 'm-9', 'meter' FROM communities"
                             " WHERE code = 'cq' RETURNING id")
    await _energy(conn, (await cur.fetchone() or (0,))[0], 30)
    me = Actor.butler((await (await conn.execute("SELECT id FROM butlers WHERE name = '王师傅'")).fetchone())[0])
    for community in ("cp", "cq", "cq"):
        await wo_repo.open_order(conn, policy, wo_repo.NewOrder(community=community, title="x", origin="staff",
                                                                priority="P2"), local(1, 10, 10), me)
    company = await build_company(conn, None, "month", date(2027, 1, 5), tariff(), local(2, 2, 9))
    rows = {r["community"]: r for r in company["communities"]}
    assert set(rows) == {"cp", "cq", "合计 / total"}
    assert (rows["cp"]["opened"], rows["cq"]["opened"], company["totals"]["opened"]) == (1, 2, 3)
    assert (rows["cp"]["cost"], rows["cq"]["cost"], company["totals"]["cost"]) == ("15.36", "15.36", "30.72")
    assert company["totals"]["kwh"] == "48.000"
    assert company["work_orders"] == [{"origin": "staff", "priority": "P2", "opened": 3}]
    assert [e["community"] for e in company["energy"]] == ["cp", "cq"]
    assert company["sla"]["opened"] == 3
    only_cp = await build_company(conn, ["cp"], "month", date(2027, 1, 5), tariff(), local(2, 2, 9))
    assert [r["community"] for r in only_cp["communities"]] == ["cp", "合计 / total"]
    assert set(tables(company)) == {"communities", "work_orders", "sla", "complaints", "maintenance", "inspections",
                                    "availability", "energy", "contractors"}
    assert to_csv(tables(company)["communities"]).splitlines()[-1].startswith("合计 / total,3,")
    assert pdf.render(company).startswith(b"%PDF")
