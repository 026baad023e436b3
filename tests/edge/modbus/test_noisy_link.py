"""One unit answering garbage on a shared link (issue 24, ``make chaos`` noisy_bus): a real pymodbus
server behind one TCP port, several unit ids (an RS-485-to-Ethernet converter), one of which has
every reply's PDU scrambled on its way out exactly as the simulators' ``garbage_frames`` fault does
(``trace_packet``: MBAP header intact, a function code the master never asked for, random bytes).

pymodbus 3 raises on such a frame inside ``data_received``, which closed the connection under every
unit; the link now drops the frame and keeps the connection (:mod:`edge.modbus.link`), and the unit
goes offline and is polled with backoff (:mod:`edge.modbus.poller`).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator

import pytest
from pymodbus.server import ModbusTcpServer

from edge.config import DeviceConfig, TcpLinkConfig
from edge.errors import ModbusFault
from edge.metrics import PollMetrics
from edge.modbus.link import ModbusLink
from edge.modbus.poller import ModbusDevice
from guanjia.core.ports import free_port
from guanjia.core.wire import Quality
from tests.edge.modbus.test_poller import Sink
from tests.support.edge.profiles import PUMP_VALUES, TEST_PUMP
from tests.support.edge.servers import Unit, sim_device

GARBAGE_UNIT = 2
TIMEOUT_S = 1.0


class Scrambler:
    """The simulators' garbage: keep the MBAP header, replace the PDU (``simulators.modbus_server``)."""

    def __init__(self, unit: int) -> None:
        self.unit = unit
        self.rng = random.Random(24)
        self.on = True

    def __call__(self, sending: bool, data: bytes) -> bytes:
        if not (sending and self.on and len(data) >= 9 and data[6] == self.unit):
            return data
        body = bytearray(self.rng.getrandbits(8) for _ in range(len(data) - 7))
        body[0] = (data[7] ^ 0x55) & 0x7F or 0x41
        return data[:7] + bytes(body)


@contextlib.asynccontextmanager
async def converter(units: list[Unit], scrambler: Scrambler) -> AsyncIterator[int]:
    port = free_port()
    server = ModbusTcpServer([sim_device(u) for u in units], address=("127.0.0.1", port), trace_packet=scrambler)
    await server.serve_forever(background=True)
    try:
        yield port
    finally:
        with contextlib.suppress(Exception):
            await server.shutdown()  # type: ignore[no-untyped-call]


def shared_link(port: int, metrics: PollMetrics) -> ModbusLink:
    # the agent's defaults: 1 s deadline, one immediate retry
    return ModbusLink(TcpLinkConfig(type="tcp", host="127.0.0.1", port=port, timeout_s=TIMEOUT_S, retries=1),
                      metrics)


async def test_a_garbage_answer_fails_that_request_at_once_and_keeps_the_connection() -> None:
    units = [Unit(u, TEST_PUMP, dict(PUMP_VALUES)) for u in (1, GARBAGE_UNIT, 3)]
    async with converter(units, Scrambler(GARBAGE_UNIT)) as port:
        link = shared_link(port, PollMetrics())
        assert await link.read("holding_register", 0, 1, unit=1)
        started = time.monotonic()
        with pytest.raises(ModbusFault) as fault:
            await link.read("holding_register", 0, 1, unit=GARBAGE_UNIT)
        assert fault.value.quality is Quality.DECODE_ERROR
        assert time.monotonic() - started < TIMEOUT_S / 2  # not the request's whole deadline
        assert link.connected
        for unit in (1, 3, 1):  # the neighbours' next requests: same connection, answered
            assert await link.read("holding_register", 0, 1, unit=unit)
        assert link.connects == 1
        await link.close()


async def test_neighbours_stay_online_while_one_unit_sends_garbage() -> None:
    """Six healthy units and one garbage unit on one converter, each polled every 0.25 s for 6 s: no
    neighbour ever fails a poll, the link is never reconnected, the garbage unit goes offline (its
    points flagged, never a value) and is then polled with backoff, not every period."""
    units = [Unit(u, TEST_PUMP, dict(PUMP_VALUES)) for u in range(1, 8)]
    scrambler = Scrambler(GARBAGE_UNIT)
    sink, metrics = Sink(), PollMetrics()
    async with converter(units, scrambler) as port:
        link = shared_link(port, metrics)
        devices = [ModbusDevice(DeviceConfig(id=f"unit-{u.unit}", profile="test-pump", unit=u.unit, period_s=0.25),
                                TEST_PUMP, link, sink, metrics, offline_after=3, backoff_max_s=4.0)
                   for u in units]
        tasks = [asyncio.create_task(d.run(i / len(devices))) for i, d in enumerate(devices)]
        await asyncio.sleep(6.0)
        for d in devices:
            d.stopped = True
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await link.close()
    assert link.connects == 1
    garbage = f"unit-{GARBAGE_UNIT}"
    for d in devices:
        if d.id == garbage:
            continue
        readings = sink.of(d.id)
        assert len(readings) >= 15, (d.id, len(readings))
        assert d.online is True
        assert d.failures == 0
        assert all(q is Quality.GOOD for *_, quality in readings for q in quality.values()), d.id
    assert [(dev, kind) for dev, kind, _ in sink.events if kind == "device_offline"] == [(garbage, "device_offline")]
    flagged = {q for *_, quality in sink.of(garbage) for q in quality.values()}
    assert flagged <= {Quality.DECODE_ERROR, Quality.OFFLINE}
    assert all(v is None for *_, values, _ in sink.of(garbage) for v in values.values())
    # offline after 3 polls, then backoff (1, 2, 4 s ...): a handful of requests, not ~24 polls' worth
    assert units[GARBAGE_UNIT - 1].requests <= 16, units[GARBAGE_UNIT - 1].requests


async def test_a_unit_whose_garbage_stops_comes_back_online() -> None:
    units = [Unit(u, TEST_PUMP, dict(PUMP_VALUES)) for u in (1, GARBAGE_UNIT)]
    scrambler = Scrambler(GARBAGE_UNIT)
    sink, metrics = Sink(), PollMetrics()
    async with converter(units, scrambler) as port:
        link = shared_link(port, metrics)
        dev = ModbusDevice(DeviceConfig(id="noisy", profile="test-pump", unit=GARBAGE_UNIT, period_s=0.2),
                           TEST_PUMP, link, sink, metrics, offline_after=2, backoff_max_s=1.0)
        task = asyncio.create_task(dev.run(0.0))
        await asyncio.sleep(1.0)
        assert dev.online is False
        scrambler.on = False
        await asyncio.sleep(2.5)
        dev.stopped = True
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await link.close()
    assert dev.online is True
    assert [kind for _, kind, _ in sink.events] == ["device_offline", "device_online"]
    assert link.connects == 1
