"""The DL/T 645 and CJ/T 188 masters against simulated meter buses over real TCP sockets:
every point decoded, error replies as per-point quality, faults that cost only their own meter."""

from __future__ import annotations

import asyncio
import time

import pytest

from device_profiles import find_profile
from device_profiles.meters import decode_point, encode_point
from edge.config import DeviceConfig, LinkConfig
from edge.metrics import PollMetrics
from edge.serialbus.link import MeterLink
from edge.serialbus.poller import MeterDevice
from guanjia.core.wire import Quality
from simulators.meterbus import MeterBus
from tests.edge.modbus.test_poller import Sink
from tests.support.meters import dlt645_bus, water_bus

DLT = find_profile("dlt645-3phase")
WATER = find_profile("cjt188-water")


def link(port: int, protocol: str = "dlt645", timeout: float = 0.3) -> MeterLink:
    cfg = LinkConfig(type="rtu-over-tcp", protocol=protocol, host="127.0.0.1", port=port,
                     timeout_s=timeout, retries=0, offline_after=2, backoff_max_s=2)
    return MeterLink(cfg, PollMetrics())


def meter(dev_id: str, address: str, bus_link: MeterLink, sink: Sink, profile: str = "dlt645-3phase") -> MeterDevice:
    prof = find_profile(profile)
    return MeterDevice(DeviceConfig(id=dev_id, profile=profile, address=address), prof, bus_link, sink,
                       bus_link.metrics, clock=lambda: 1, offline_after=2, backoff_max_s=2)


def expected(bus_meter: object, name: str) -> float:
    """What the master must read: the simulator's value through the wire format."""
    point = DLT.point(name)
    value = bus_meter.value_of(point)  # type: ignore[attr-defined]
    assert value is not None
    return decode_point(point, encode_point(point, value))


async def test_three_meters_on_one_bus_read_every_point() -> None:
    sink = Sink()
    async with dlt645_bus(3) as bus:
        shared = link(bus.port)
        meters = [meter(f"m{i}", f"{i:012d}", shared, sink) for i in (1, 2, 3)]
        for m in meters:
            for group in m.groups:
                await m.poll(group)
        await shared.close()
    assert shared.connects == 1, "one connection for the whole bus"
    for i, m in enumerate(meters, start=1):
        merged: dict[str, object] = {}
        for _, _, values, quality in sink.of(m.id):
            assert set(quality.values()) == {Quality.GOOD}
            merged |= values
        assert set(merged) == set(DLT.point_names)
        sim = bus.meter(f"m{i}")
        for name in ("voltage_l1", "current_l2", "power_total", "energy_import", "energy_import_t2", "frequency"):
            assert merged[name] == pytest.approx(expected(sim, name)), name
        assert 180 < float(merged["voltage_l1"]) < 260  # type: ignore[arg-type]
        assert m.online


async def test_faults_cost_only_their_own_meter() -> None:
    sink = Sink()
    async with dlt645_bus(5) as bus:
        bus.meter("m2").faults.silent = True
        bus.meter("m3").faults.garbage = True
        bus.meter("m4").faults.bad_checksum = True
        bus.meter("m5").faults.wrong_address = True
        shared = link(bus.port, timeout=0.2)
        meters = {f"m{i}": meter(f"m{i}", f"{i:012d}", shared, sink) for i in range(1, 6)}
        fast = {name: next(g for g in m.groups if g.name == "fast") for name, m in meters.items()}
        for name in ("m2", "m3", "m4", "m5", "m1"):
            await meters[name].poll(fast[name])
        started = time.monotonic()
        await meters["m1"].poll(fast["m1"])
        healthy_s = time.monotonic() - started
        await shared.close()

    def qualities(name: str) -> set[Quality]:
        return set(sink.of(name)[0][3].values())

    assert qualities("m1") == {Quality.GOOD}
    assert qualities("m2") == {Quality.TIMEOUT}
    # a silent meter is asked once per poll, not once per point: its neighbours keep the bus
    assert bus.meter("m2").requests == 1
    assert qualities("m3") <= {Quality.DECODE_ERROR, Quality.TIMEOUT}
    assert Quality.DECODE_ERROR in qualities("m3")
    assert qualities("m4") == {Quality.DECODE_ERROR}
    assert qualities("m5") == {Quality.DECODE_ERROR}
    assert healthy_s < 0.5, f"a healthy meter's poll took {healthy_s:.2f}s next to faulty ones"


async def test_error_reply_is_point_quality_and_the_meter_stays_online() -> None:
    sink = Sink()
    async with dlt645_bus(1) as bus:
        bus.meter("m1").faults.no_data = True
        shared = link(bus.port)
        m = meter("m1", "000000000001", shared, sink)
        await m.poll(m.groups[0])
        await shared.close()
    assert set(sink.of("m1")[0][3].values()) == {Quality.ILLEGAL_ADDRESS}
    assert m.online is True


async def test_silent_meter_goes_offline_then_comes_back() -> None:
    sink = Sink()
    async with dlt645_bus(2) as bus:
        bus.meter("m2").faults.silent = True
        shared = link(bus.port, timeout=0.1)
        m2 = meter("m2", "000000000002", shared, sink)
        m2.groups = [g for g in m2.groups if g.name == "fast"]
        m2.groups[0].period_s = 0.2
        task = asyncio.create_task(m2.run(0.0))
        for _ in range(50):
            await asyncio.sleep(0.05)
            if m2.online is False:
                break
        assert m2.online is False
        assert ("m2", "device_offline") in [(d, t) for d, t, _ in sink.events]
        assert set(sink.of("m2")[-1][3].values()) == {Quality.OFFLINE}
        bus.meter("m2").faults.silent = False
        for _ in range(100):
            await asyncio.sleep(0.05)
            if m2.online:
                break
        m2.stopped = True
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await shared.close()
    assert m2.online is True
    assert [t for d, t, _ in sink.events if d == "m2"][-1] == "device_online"


async def test_water_meter_reads_flow_valve_and_battery() -> None:
    sink = Sink()
    async with water_bus() as bus:
        sim = bus.meter("w1")
        sim.state.valve = 1  # type: ignore[union-attr]
        sim.state.battery_low = True  # type: ignore[union-attr]
        shared = link(bus.port, "cjt188")
        w = meter("w1", "00000000000001", shared, sink, "cjt188-water")
        await w.poll(w.groups[0])
        bus.meter("w1").faults.no_data = True
        await w.poll(w.groups[0])
        await shared.close()
    (_, _, values, quality), (_, _, _, bad) = sink.of("w1")
    assert set(quality.values()) == {Quality.GOOD}
    assert values["valve"] == 1
    assert values["battery_low"] is True
    assert values["water_total"] == pytest.approx(100.0, abs=0.01)
    assert set(bad.values()) == {Quality.DEVICE_FAILURE}


async def test_a_serial_port_bus_through_pyserial() -> None:
    """The ``rtu`` path: the simulator serves the bus on a pseudo-terminal, the master opens the
    device node with pyserial like a USB RS-485 adapter."""
    sink = Sink()
    async with dlt645_bus(2) as bus:
        path = await bus.open_pty()
        cfg = LinkConfig(type="rtu", protocol="dlt645", serial_port=path, baudrate=2400, parity="E",
                         timeout_s=0.5, retries=0)
        serial_link = MeterLink(cfg, PollMetrics())
        for i in (1, 2):
            m = meter(f"m{i}", f"{i:012d}", serial_link, sink)
            await m.poll(m.groups[0])
        await serial_link.close()
    for i in (1, 2):
        (_, _, values, quality), = sink.of(f"m{i}")
        assert set(quality.values()) == {Quality.GOOD}
        assert values["voltage_l1"] == pytest.approx(expected(bus.meter(f"m{i}"), "voltage_l1"))


async def test_neighbours_keep_their_rate_next_to_a_silent_and_a_noisy_meter() -> None:
    """Five meters polled concurrently on one bus, one silent and one sending noise: the three
    healthy ones keep (nearly) their whole poll rate."""
    sink = Sink()
    period, seconds = 0.5, 4.0
    async with dlt645_bus(5) as bus:
        bus.meter("m4").faults.silent = True
        bus.meter("m5").faults.garbage = True
        shared = link(bus.port, timeout=0.15)
        meters = [meter(f"m{i}", f"{i:012d}", shared, sink) for i in range(1, 6)]
        for m in meters:
            m.groups = [g for g in m.groups if g.name == "fast"]
            m.groups[0].period_s = period
        tasks = [asyncio.create_task(m.run(i / len(meters))) for i, m in enumerate(meters)]
        await asyncio.sleep(seconds)
        for m in meters:
            m.stopped = True
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await shared.close()
    expected_polls = seconds / period
    for name in ("m1", "m2", "m3"):
        good = [r for r in sink.of(name) if set(r[3].values()) == {Quality.GOOD}]
        assert len(good) >= 0.8 * expected_polls - 1, (name, len(good))
    assert all(set(r[3].values()) <= {Quality.TIMEOUT, Quality.OFFLINE} for r in sink.of("m4"))
    assert any(Quality.DECODE_ERROR in r[3].values() for r in sink.of("m5"))


async def test_blocks_save_exchanges_and_a_meter_without_them_is_read_item_by_item() -> None:
    sink = Sink()
    async with dlt645_bus(2) as bus:
        bus.meter("m2").serves_blocks = False  # type: ignore[union-attr]
        shared = link(bus.port)
        m1, m2 = (meter(f"m{i}", f"{i:012d}", shared, sink) for i in (1, 2))
        for m in (m1, m2):
            for _ in range(2):
                for group in m.groups:
                    await m.poll(group)
        await shared.close()
    for name in ("m1", "m2"):
        for _, _, values, quality in sink.of(name):
            assert set(quality.values()) == {Quality.GOOD}
            assert None not in values.values()
    assert m1.request_count == 10  # 5 exchanges per group instead of 9
    assert m2.request_count == 18  # the blocks it refused are single items now
    # m1: 10 exchanges per round; m2: 18 plus the 3 refused blocks in its first round, 18 after
    assert bus.meter("m1").requests == 20
    assert bus.meter("m2").requests == 21 + 18
    fast = [values for _, _, values, _ in sink.of("m1") if "voltage_l2" in values]
    assert fast[-1]["voltage_l2"] == pytest.approx(expected(bus.meter("m1"), "voltage_l2"))


async def test_the_converter_goes_away_and_comes_back() -> None:
    """A converter restart: requests fail fast with comm_error while it is down (backoff, no
    connect timeout per request), and the link reconnects by itself when it is back."""
    sink = Sink()
    bus = dlt645_bus(1)
    await bus.start()
    port = bus.port
    shared = link(port)
    m = meter("m1", "000000000001", shared, sink)
    fast = next(g for g in m.groups if g.name == "fast")
    await m.poll(fast)
    await bus.stop()
    await m.poll(fast)  # the connection breaks under this poll
    started = time.monotonic()
    await m.poll(fast)  # down: refused at once
    down_s = time.monotonic() - started
    revived = MeterBus("dlt645", bus.meters, port=port)
    await revived.start()
    try:
        for _ in range(60):
            await asyncio.sleep(0.1)
            await m.poll(fast)
            if set(sink.of("m1")[-1][3].values()) == {Quality.GOOD}:
                break
    finally:
        await shared.close()
        await revived.stop()
    qualities = [set(r[3].values()) for r in sink.of("m1")]
    assert qualities[0] == {Quality.GOOD}
    assert {Quality.COMM_ERROR} in qualities[1:3]
    assert down_s < 0.2
    assert qualities[-1] == {Quality.GOOD}
    assert shared.connects == 2
