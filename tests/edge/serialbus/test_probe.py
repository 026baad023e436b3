"""``guanjia edge probe --protocol dlt645|cjt188`` against simulated buses over real sockets."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from edge.serialbus.probe import link_config, probe_meter
from guanjia.app.cli.main import app
from simulators.meterbus import MeterBus
from tests.support.meters import dlt645_bus, dlt645_meter, water_bus


async def test_a_lone_meter_is_found_by_broadcast_and_read() -> None:
    async with MeterBus("dlt645", [dlt645_meter("lone", "202401010042")]) as bus:
        result = await probe_meter(link_config("dlt645", f"127.0.0.1:{bus.port}", baudrate=2400, parity="E",
                                               timeout_s=0.5), di="02010100")
    assert result.address == "202401010042"
    assert [e.error for e in result.exchanges] == [None, None]
    assert result.exchanges[1].request.hex(" ").startswith("fe fe fe fe 68 42 00 01 01 24 20 68 11 04 33 34 34 35")
    what, value, unit = result.values[-1]
    assert "A相电压" in what
    assert unit == "V"
    assert 180 < float(value) < 260


async def test_colliding_broadcast_says_so_and_an_address_still_works() -> None:
    async with dlt645_bus(3) as bus:
        config = link_config("dlt645", f"127.0.0.1:{bus.port}", baudrate=2400, parity="E", timeout_s=0.5)
        collided = await probe_meter(config)
        direct = await probe_meter(config, address="000000000003", di="04000401")
    assert collided.exchanges[0].error is not None
    assert "several meters" in collided.exchanges[0].error
    assert direct.values[0][0] == "error reply"
    assert "无请求数据" in direct.values[0][1]


async def test_water_meter_probe() -> None:
    async with water_bus() as bus:
        result = await probe_meter(link_config("cjt188", f"127.0.0.1:{bus.port}", baudrate=2400, parity="E",
                                               timeout_s=0.5))
    assert result.address == "00000000000001"
    assert {w: v for w, v, _ in result.values}["阀门 / valve"] == "open"


@pytest.fixture
def served_bus() -> Iterator[int]:
    """A meter bus on its own loop in a thread, so the CLI can run its own ``asyncio.run``."""
    loop = asyncio.new_event_loop()
    bus = MeterBus("dlt645", [dlt645_meter("lone", "000000000007")])
    ready = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        async with bus:
            ready.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    assert ready.wait(10)
    yield bus.port
    loop.call_soon_threadsafe(stop.set)
    thread.join(10)
    loop.close()


def test_cli_probe_prints_bytes_and_value(served_bus: int) -> None:
    result = CliRunner().invoke(app, ["edge", "probe", f"127.0.0.1:{served_bus}", "--protocol", "dlt645",
                                      "--di", "00010000", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["address"] == "000000000007"
    assert doc["exchanges"][1]["reply"].startswith("68 07 00 00 00 00 00 68 91")
    assert doc["values"][-1]["unit"] == "kWh"


async def test_probe_on_a_serial_port() -> None:
    async with MeterBus("dlt645", [dlt645_meter("lone", "000000000005")]) as bus:
        path = await bus.open_pty()
        result = await probe_meter(link_config("dlt645", path, baudrate=2400, parity="E", timeout_s=0.5))
    assert result.address == "000000000005"
    assert result.values[-1][2] == "kWh"


async def test_probe_reads_a_data_block_item_by_item() -> None:
    async with MeterBus("dlt645", [dlt645_meter("lone", "000000000006")]) as bus:
        result = await probe_meter(link_config("dlt645", f"127.0.0.1:{bus.port}", baudrate=2400, parity="E",
                                               timeout_s=0.5), address="000000000006", di="0001FF00")
    names = [what for what, _, _ in result.values[1:]]
    assert len(names) == 5
    assert names[0].startswith("00010000 正向有功总电能")
    assert names[4].startswith("00010400")
    assert {unit for _, _, unit in result.values[1:]} == {"kWh"}
