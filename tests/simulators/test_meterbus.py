"""The simulated meter buses over real TCP: addressing, broadcast, collisions and each fault's bytes."""

from __future__ import annotations

import asyncio

import pytest

from device_profiles.protocols import cjt188, dlt645
from simulators import SimulatedFleet, generate_fleet
from simulators.errors import SimulatorError
from simulators.meterbus import MeterBus
from tests.support.meters import dlt645_bus, dlt645_meter, water_bus


async def ask(port: int, request: bytes, wait: float = 0.3) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    out = b""
    try:
        async with asyncio.timeout(wait):
            while chunk := await reader.read(512):
                out += chunk
    except TimeoutError:
        pass
    writer.close()
    await writer.wait_closed()
    return out


async def test_only_the_addressed_meter_answers() -> None:
    async with dlt645_bus(3) as bus:
        raw = await ask(bus.port, dlt645.encode_frame(dlt645.read_request("000000000002", 0x02010100)))
        frame = dlt645.decode_frame(raw)
        assert frame.address == "000000000002"
        assert frame.control == 0x91
        assert await ask(bus.port, dlt645.encode_frame(dlt645.read_request("000000000009", 0x02010100))) == b""
        unknown = dlt645.decode_frame(await ask(bus.port, dlt645.encode_frame(
            dlt645.read_request("000000000001", 0x04000401))))
        assert unknown.control == 0xD1
        assert unknown.data == b"\x02"
    assert [m.requests for m in bus.meters] == [1, 1, 0]


async def test_broadcast_read_address_alone_and_colliding() -> None:
    async with MeterBus("dlt645", [dlt645_meter("lone", "123456789012")]) as bus:
        raw = await ask(bus.port, dlt645.encode_frame(dlt645.read_address_request()))
        assert dlt645.decode_frame(raw).address == "123456789012"
    async with dlt645_bus(3) as bus:
        raw = await ask(bus.port, dlt645.encode_frame(dlt645.read_address_request()))
        with pytest.raises(dlt645.FrameError):
            dlt645.decode_frame(raw)


async def test_fault_bytes() -> None:
    request = dlt645.encode_frame(dlt645.read_request("000000000001", 0x02010100))
    async with dlt645_bus(1) as bus:
        faults = bus.meter("m1").faults
        faults.bad_checksum = True
        with pytest.raises(dlt645.ChecksumError):
            dlt645.decode_frame(await ask(bus.port, request))
        faults.bad_checksum, faults.wrong_address = False, True
        assert dlt645.decode_frame(await ask(bus.port, request)).address == "000000000002"
        faults.wrong_address, faults.silent = False, True
        assert await ask(bus.port, request) == b""


async def test_water_meter_answers_901f_and_its_address() -> None:
    async with water_bus() as bus:
        raw = await ask(bus.port, cjt188.encode_frame(cjt188.read_request("00000000000001", ser=9)))
        frame = cjt188.decode_frame(raw)
        assert frame.ser == 9
        assert cjt188.decode_metering(frame).valve == 0
        raw = await ask(bus.port, cjt188.encode_frame(cjt188.read_address_request()))
        assert cjt188.decode_frame(raw).address == "00000000000001"


def test_a_bus_refuses_duplicate_addresses_and_mixed_protocols() -> None:
    with pytest.raises(SimulatorError):
        MeterBus("dlt645", [dlt645_meter("a", "000000000001"), dlt645_meter("b", "000000000001")])
    with pytest.raises(SimulatorError):
        MeterBus("cjt188", [dlt645_meter("a", "000000000001")])


async def test_generated_community_has_submeters_per_building_and_a_water_meter() -> None:
    spec = generate_fleet(40, serial_meters=True)
    async with SimulatedFleet(spec) as fleet:
        entries = [d for d in fleet.inventory["devices"] if d["transport"] in ("dlt645", "cjt188")]
        by_port: dict[int, list[dict[str, object]]] = {}
        for entry in entries:
            by_port.setdefault(int(entry["port"]), []).append(entry)
        submeters = [e for e in entries if e["transport"] == "dlt645"]
        assert {e["building"] for e in submeters} >= {"b1", "b2", "b3"}
        assert all(len({str(e["building"]) for e in group}) == 1 for group in by_port.values())
        assert max(len(group) for group in by_port.values()) == 3  # several meters share a building's bus
        water = [e for e in entries if e["transport"] == "cjt188"]
        assert [w["id"] for w in water] == ["b1-water-1"]
        assert set(fleet.values("b1-water-1")) == {"water_total", "water_settlement", "valve", "battery_low"}
        assert float(fleet.values("b1-submeter-1")["energy_import_t2"]) > 0
        one = submeters[1]
        raw = await ask(int(one["port"]), dlt645.encode_frame(dlt645.read_request(str(one["address"]), 0x00010000)))
        assert dlt645.decode_frame(raw).address == one["address"]
        fleet.inject(str(one["id"]), "offline")
        assert await ask(int(one["port"]), dlt645.encode_frame(
            dlt645.read_request(str(one["address"]), 0x00010000))) == b""
    plain = generate_fleet(40)
    assert not any(d.profile.startswith(("dlt645", "cjt188")) for d in plain.devices)
