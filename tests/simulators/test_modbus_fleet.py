"""Real pymodbus servers serving simulated devices, read by a real pymodbus client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from pymodbus.exceptions import ModbusIOException

from simulators import FleetSpec, Scenario, ScenarioFault, SimulatedFleet, generate_fleet
from simulators.fleet import DeviceSpec, Layout
from tests.support.modbus import PointReader

Connect = Callable[[str, int], Awaitable[PointReader]]


def _small_fleet(layout: Layout = "shared") -> FleetSpec:
    return FleetSpec(community="t", layout=layout, devices=[
        DeviceSpec(id="m1", profile="eastron-sdm630", unit=1),
        DeviceSpec(id="m2", profile="eastron-sdm120", unit=2),
        DeviceSpec(id="p1", profile="vfd-pump", unit=3),
        DeviceSpec(id="l1", profile="elevator-gbt24476", unit=4),
    ])


def _entry(fleet: SimulatedFleet, device: str) -> dict[str, Any]:
    return next(d for d in fleet.inventory["devices"] if d["id"] == device)


@pytest.mark.parametrize("layout", ["shared", "per-device"])
async def test_sensible_values_at_documented_addresses(layout: Layout, modbus_client: Connect) -> None:
    async with SimulatedFleet(_small_fleet(layout)) as fleet:
        ports = {d["port"] for d in fleet.inventory["devices"]}
        assert len(ports) == (1 if layout == "shared" else 4)
        m1 = _entry(fleet, "m1")
        reader = await modbus_client(m1["host"], m1["port"])
        meter = await reader.values(m1["unit"], "eastron-sdm630", "voltage_l1", "voltage_l2", "voltage_l3",
                                    "frequency", "power_total", "energy_import", "power_factor")
        for phase in ("voltage_l1", "voltage_l2", "voltage_l3"):
            assert meter[phase] == pytest.approx(230, abs=8)
        assert meter["frequency"] == pytest.approx(50, abs=0.2)
        assert meter["power_total"] > 0
        assert meter["energy_import"] > 0
        assert 0.5 < meter["power_factor"] <= 1.0
        # a master reading the classic block 0..59 in one request gets the same voltage
        rr = await reader.client.read_input_registers(0, count=60, device_id=m1["unit"])
        assert not rr.isError()

        m2 = _entry(fleet, "m2")
        reader = await modbus_client(m2["host"], m2["port"])
        single = await reader.values(m2["unit"], "eastron-sdm120", "voltage", "frequency", "current")
        assert single["voltage"] == pytest.approx(230, abs=8)
        assert single["frequency"] == pytest.approx(50, abs=0.2)

        p1 = _entry(fleet, "p1")
        reader = await modbus_client(p1["host"], p1["port"])
        pump = await reader.values(p1["unit"], "vfd-pump", "outlet_pressure", "pressure_setpoint", "status_word",
                                   "frequency", "run_hours", "start_count", "fault_code", "fault_reset")
        assert pump["pressure_setpoint"] == 4.0
        assert 2.5 < pump["outlet_pressure"] < 5.0
        assert pump["status_word"] & 0b11 == 0b11      # ready_on | ready_run
        assert pump["run_hours"] > 0
        assert pump["start_count"] > 0
        assert pump["fault_code"] == 0
        assert pump["fault_reset"] is False

        l1 = _entry(fleet, "l1")
        reader = await modbus_client(l1["host"], l1["port"])
        lift = await reader.values(l1["unit"], "elevator-gbt24476", "service_mode", "floor", "door_state",
                                   "fault_code", "run_count", "device_clock")
        assert lift["service_mode"] == 0
        assert -1 <= lift["floor"] <= 18
        assert lift["fault_code"] == 0
        assert lift["run_count"] > 0
        assert abs(lift["device_clock"] - fleet.clock.device_now()) < 5


async def test_device_rules_holes_limits_and_writes(modbus_client: Connect) -> None:
    async with SimulatedFleet(_small_fleet()) as fleet:
        m1, p1 = _entry(fleet, "m1"), _entry(fleet, "p1")
        reader = await modbus_client(m1["host"], m1["port"])
        c = reader.client
        hole = await c.read_input_registers(0x58, count=2, device_id=m1["unit"])
        assert hole.isError()
        assert hole.exception_code == 2
        too_many = await c.read_input_registers(0, count=61, device_id=m1["unit"])
        assert too_many.isError()
        assert too_many.exception_code == 3
        fc06 = await c.write_register(0x14, 1, device_id=m1["unit"])     # Eastron accepts FC16 only
        assert fc06.isError()
        assert fc06.exception_code == 1
        # pump setpoint: range-checked write through FC06, then read back
        ok = await c.write_register(2002, 450, device_id=p1["unit"])
        assert not ok.isError()
        await asyncio.sleep(0.05)
        assert fleet.devices["p1"].model.values()["pressure_setpoint"] == 4.5
        rr = await c.read_holding_registers(2002, count=1, device_id=p1["unit"])
        assert rr.registers == [450]
        out_of_range = await c.write_register(2002, 2000, device_id=p1["unit"])   # 20 bar > max 10
        assert out_of_range.isError()
        assert out_of_range.exception_code == 3
        read_only = await c.write_register(2000, 1, device_id=p1["unit"])
        assert read_only.isError()
        assert read_only.exception_code == 3
        half_of_uint32 = await c.write_register(2004, 1, device_id=p1["unit"])
        assert half_of_uint32.isError()
        assert half_of_uint32.exception_code == 2
        with pytest.raises(ModbusIOException):           # nobody at unit 99: silence, like RS-485
            await c.read_holding_registers(0, count=1, device_id=99)


async def test_faults_change_values_and_write_labels(tmp_path: Path, modbus_client: Connect) -> None:
    labels = tmp_path / "labels.jsonl"
    async with SimulatedFleet(_small_fleet(), labels_path=labels, speed=10.0, tick_s=0.05) as fleet:
        l1 = _entry(fleet, "l1")
        reader = await modbus_client(l1["host"], l1["port"])
        trapped = fleet.inject("l1", "passengers_trapped", duration_s=3600)
        await asyncio.sleep(0.2)
        lift = await reader.values(l1["unit"], "elevator-gbt24476", "fault_code", "alarm_word", "in_door_zone",
                                   "passenger_present", "car_moving")
        assert lift == {"fault_code": 1, "alarm_word": 1, "in_door_zone": False, "passenger_present": True,
                        "car_moving": False}
        fleet.clear(trapped)
        await asyncio.sleep(0.2)
        assert (await reader.values(l1["unit"], "elevator-gbt24476", "fault_code"))["fault_code"] == 0

        fleet.inject("m1", "modbus_exception", params={"code": 4})
        rr = await reader.client.read_input_registers(0, count=2, device_id=1)
        assert rr.isError()
        assert rr.exception_code == 4
        fleet.inject("m1", "offline", duration_s=2.0)    # 2 simulated seconds = 0.2 s wall at speed 10
        with pytest.raises(ModbusIOException):
            await reader.client.read_input_registers(0, count=2, device_id=1)
        await asyncio.sleep(0.5)
        fleet.inject("p1", "garbage_frames")
        with pytest.raises(ModbusIOException):
            await reader.client.read_holding_registers(0, count=4, device_id=3)
    lines = [json.loads(line) for line in labels.read_text().splitlines()]
    by = {(r["device"], r["fault"], r["event"]): r for r in lines}
    start, end = by[("l1", "passengers_trapped", "start")], by[("l1", "passengers_trapped", "end")]
    assert start["end_sim_ms"] is None
    assert end["ended_by"] == "cleared"
    assert end["end_sim_ms"] > end["start_sim_ms"]
    assert end["end_wall_ms"] >= end["start_wall_ms"]
    assert by[("m1", "offline", "end")]["ended_by"] == "duration"
    assert by[("m1", "offline", "end")]["end_sim_ms"] - by[("m1", "offline", "end")]["start_sim_ms"] == 2000
    assert by[("m1", "modbus_exception", "end")]["ended_by"] == "shutdown"
    assert by[("p1", "garbage_frames", "end")]["ended_by"] == "shutdown"


async def test_generated_fleet_serves_hundreds_of_units(modbus_client: Connect) -> None:
    spec = generate_fleet(300)
    kinds: dict[str, int] = {}
    for d in spec.devices:
        kinds[d.profile] = kinds.get(d.profile, 0) + 1
    assert kinds["elevator-gbt24476"] > kinds["vfd-pump"]
    assert kinds["eastron-sdm630"] + kinds["eastron-sdm120"] > kinds["elevator-gbt24476"]
    async with SimulatedFleet(spec) as fleet:
        inventory = fleet.inventory["devices"]
        assert len(inventory) == 300
        assert {d["id"] for d in inventory} >= {"b1-lift-1", "b1-pump-1", "b1-gate-1", "b1-meter-1"}
        last_meter = [d for d in inventory if d["profile"] == "eastron-sdm630"][-1]
        reader = await modbus_client(last_meter["host"], last_meter["port"])
        assert (await reader.values(last_meter["unit"], "eastron-sdm630", "frequency"))["frequency"] \
            == pytest.approx(50, abs=0.2)


async def test_scenario_faults_start_and_end_on_the_simulated_clock(tmp_path: Path) -> None:
    scenario = Scenario(faults=[
        ScenarioFault(device="l*", fault="door_lock_fault", at=30.0, duration=60.0),
        ScenarioFault(device="m1", fault="phase_loss", at=0.0, params={"phase": 1}),
    ])
    labels = tmp_path / "labels.jsonl"
    async with SimulatedFleet(_small_fleet(), scenario=scenario, speed=100.0, tick_s=0.02,
                              labels_path=labels) as fleet:
        codes: list[object] = []
        async with asyncio.timeout(10):
            while not codes or codes[-1] != 0 or 2 not in codes:
                codes.append(fleet.values("l1")["fault_code"])
                await asyncio.sleep(0.02)
        assert float(fleet.values("m1")["voltage_l1"]) < 1.0
    records = [json.loads(line) for line in labels.read_text().splitlines()]
    door = [r for r in records if r["fault"] == "door_lock_fault" and r["event"] == "end"]
    assert len(door) == 1
    assert door[0]["ended_by"] == "duration"
    assert door[0]["end_sim_ms"] - door[0]["start_sim_ms"] == 60_000
    assert door[0]["start_sim_ms"] == int((fleet.clock.start + 30.0) * 1000)


def test_a_failing_model_is_isolated(caplog: pytest.LogCaptureFixture) -> None:
    fleet = SimulatedFleet(_small_fleet())
    broken = fleet.devices["p1"]

    def explode(dt: float) -> None:
        raise ZeroDivisionError("bug in the physics")

    broken.model.step = explode  # type: ignore[method-assign]
    fleet.step_to(fleet.clock.now() + 10)
    fleet.step_to(fleet.clock.now() + 20)
    assert broken.broken
    assert broken.modbus is not None
    assert broken.modbus.comm.exception_code == 4
    assert not fleet.devices["m1"].broken
    assert sum("p1 failed" in r.getMessage() for r in caplog.records) == 1
