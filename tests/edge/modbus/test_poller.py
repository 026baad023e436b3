"""Acquisition against real pymodbus servers: quality flags for faulty devices, isolation of neighbours."""

from __future__ import annotations

import asyncio
from typing import Any

from edge.config import DeviceConfig, TcpLinkConfig
from edge.metrics import PollMetrics
from edge.modbus.link import ModbusLink
from edge.modbus.poller import ModbusDevice
from guanjia.core.wire import Quality, Scalar
from tests.support.edge.profiles import PUMP_VALUES, TEST_PUMP
from tests.support.edge.servers import GarbageServer, ProfileServer, Unit


class Sink:
    def __init__(self) -> None:
        self.readings: list[tuple[str, int, dict[str, Scalar], dict[str, Quality]]] = []
        self.events: list[tuple[str, str, dict[str, object]]] = []

    def reading(self, device: str, ts_ms: int, values: dict[str, Scalar], quality: dict[str, Quality]) -> None:
        self.readings.append((device, ts_ms, values, quality))

    def event(self, device: str, type_: str, data: dict[str, object]) -> None:
        self.events.append((device, type_, data))

    def of(self, device: str) -> list[tuple[str, int, dict[str, Scalar], dict[str, Quality]]]:
        return [r for r in self.readings if r[0] == device]


def device(dev_id: str, port: int, unit: int, sink: Sink, metrics: PollMetrics, timeout: float = 0.3,
           link: ModbusLink | None = None) -> ModbusDevice:
    link_cfg = TcpLinkConfig(type="tcp", host="127.0.0.1", port=port, timeout_s=timeout, retries=0, offline_after=2,
                             backoff_max_s=2)
    link = link or ModbusLink(link_cfg, metrics)
    return ModbusDevice(DeviceConfig(id=dev_id, profile="test-pump", unit=unit), TEST_PUMP, link, sink, metrics,
                        offline_after=2, backoff_max_s=2)


async def run_for(devices: list[ModbusDevice], seconds: float) -> None:
    tasks = [asyncio.create_task(d.run(i / len(devices))) for i, d in enumerate(devices)]
    await asyncio.sleep(seconds)
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    for d in devices:
        await d.link.close()


async def test_good_device_is_decoded_with_one_request_per_table() -> None:
    sink, metrics = Sink(), PollMetrics()
    unit = Unit(1, TEST_PUMP, dict(PUMP_VALUES))
    async with ProfileServer([unit]) as server:
        dev = device("good", server.port, 1, sink, metrics)
        assert [(b.table, b.start, b.count) for g in dev.groups for b in g.blocks] == [
            ("coil", 0, 1), ("holding_register", 0, 11), ("input_register", 0, 1)]
        await dev.poll(dev.groups[0])
        await dev.link.close()
    (_, ts, values, quality) = sink.readings[0]
    assert ts > 0
    assert values == {**PUMP_VALUES, "fault_reset": False}
    assert set(quality.values()) == {Quality.GOOD}
    assert ("good", "device_online") in [(d, t) for d, t, _ in sink.events]


async def test_faulty_devices_get_quality_flags_and_do_not_delay_neighbours() -> None:
    sink, metrics = Sink(), PollMetrics()
    good = Unit(1, TEST_PUMP, dict(PUMP_VALUES))
    failing = Unit(1, TEST_PUMP, dict(PUMP_VALUES), mode="exception")
    silent = Unit(1, TEST_PUMP, dict(PUMP_VALUES), mode="silent")
    async with ProfileServer([good]) as s_good, ProfileServer([failing]) as s_fail, \
            ProfileServer([silent]) as s_silent, GarbageServer() as s_garbage:
        devices = [device("good", s_good.port, 1, sink, metrics), device("failing", s_fail.port, 1, sink, metrics),
                   device("silent", s_silent.port, 1, sink, metrics),
                   device("garbage", s_garbage.port, 1, sink, metrics)]
        await run_for(devices, 2.0)
    # the good neighbour kept its 0.2 s schedule: ~10 polls in 2 s, all good
    good_readings = sink.of("good")
    assert len(good_readings) >= 5
    assert all(set(q.values()) == {Quality.GOOD} for *_, q in good_readings)
    # exception code 4 on every request: the device answers, so it stays online, points say why
    failing_readings = sink.of("failing")
    assert failing_readings
    assert all(set(q.values()) == {Quality.DEVICE_FAILURE} for *_, q in failing_readings)
    assert ("failing", "device_offline") not in [(d, t) for d, t, _ in sink.events]
    # never answers: timeouts, then offline (reported once, with offline quality), then backoff
    silent_q = [set(q.values()) for *_, q in sink.of("silent")]
    assert {Quality.TIMEOUT} in silent_q
    assert {Quality.OFFLINE} in silent_q
    assert [t for d, t, _ in sink.events if d == "silent"].count("device_offline") == 1
    assert devices[2].online is False
    # garbage frames: never good values, flagged as bad data or no valid answer, then offline
    garbage_q = set().union(*[set(q.values()) for *_, q in sink.of("garbage")])
    assert garbage_q
    assert Quality.GOOD not in garbage_q
    assert garbage_q <= {Quality.DECODE_ERROR, Quality.TIMEOUT, Quality.COMM_ERROR, Quality.OFFLINE, Quality.BAD}


async def test_shared_link_one_lock_many_units() -> None:
    """Two units behind one port share a connection; a dead unit id on the same link backs off."""
    sink, metrics = Sink(), PollMetrics()
    a = Unit(1, TEST_PUMP, dict(PUMP_VALUES))
    b = Unit(2, TEST_PUMP, {**PUMP_VALUES, "model": 9})
    ghost = Unit(7, TEST_PUMP, dict(PUMP_VALUES), mode="silent")
    async with ProfileServer([a, b, ghost]) as server:
        link = ModbusLink(TcpLinkConfig(type="tcp", host="127.0.0.1", port=server.port, timeout_s=0.3, retries=0),
                          metrics)
        devices = [device("a", server.port, 1, sink, metrics, link=link),
                   device("b", server.port, 2, sink, metrics, link=link),
                   device("ghost", server.port, 7, sink, metrics, link=link)]
        await run_for(devices, 2.0)
    assert link.connects == 1
    assert sink.of("a")
    assert sink.of("b")
    assert all(r[2]["model"] == 9 for r in sink.of("b"))
    assert len(sink.of("a")) >= 5
    assert devices[2].online is False


async def test_undeclared_hole_is_split_per_point() -> None:
    """A device refusing part of a coalesced block (exception 02) still gets its other points read."""
    sink, metrics = Sink(), PollMetrics()
    unit = Unit(1, TEST_PUMP, dict(PUMP_VALUES))
    async with ProfileServer([unit]) as server:
        dev = device("holes", server.port, 1, sink, metrics)
        # the server only defines the profile's registers: 4..9 are undefined and refused
        await dev.poll(dev.groups[0])
        await dev.link.close()
    values: dict[str, Any] = sink.readings[0][2]
    assert values["pressure_setpoint"] == 3.5
    assert values["outlet_pressure_bar"] == 3.25


async def test_rtu_over_tcp_link() -> None:
    """A transparent RS-485 converter: RTU frames (CRC, no MBAP header) over a TCP socket."""
    from pymodbus import FramerType

    sink, metrics = Sink(), PollMetrics()
    unit = Unit(5, TEST_PUMP, dict(PUMP_VALUES))
    async with ProfileServer([unit], framer=FramerType.RTU) as server:
        link = ModbusLink(TcpLinkConfig(type="rtu-over-tcp", host="127.0.0.1", port=server.port, timeout_s=1.0),
                          metrics)
        dev = device("rtu", server.port, 5, sink, metrics, link=link)
        await dev.poll(dev.groups[0])
        await link.close()
    values = sink.readings[0][2]
    assert values["outlet_pressure_bar"] == 3.25
    assert values["model"] == 7
