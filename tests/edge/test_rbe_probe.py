"""Report by exception (pure) and the commissioning probe against a real pymodbus server."""

from __future__ import annotations

from device_profiles import Point
from device_profiles.codec import encode_raw
from edge.probe import interpretations, probe
from edge.rbe import ReportFilter
from guanjia.core.wire import Quality
from tests.support.edge.profiles import PUMP_VALUES, TEST_PUMP
from tests.support.edge.servers import ProfileServer, Unit


def test_deadband_on_change_and_max_interval() -> None:
    points = [
        Point(name="v", table="input_register", address=0, dtype="float32", deadband=0.5, max_interval_s=10),
        Point(name="s", table="holding_register", address=0, dtype="uint16", on_change=True),
        Point(name="a", table="holding_register", address=1, dtype="uint16"),
    ]
    f = ReportFilter(points)
    good = Quality.GOOD
    assert f.should_send("v", 230.0, good, 0)
    assert not f.should_send("v", 230.3, good, 1000)
    assert f.should_send("v", 230.6, good, 2000)  # moved ≥ 0.5 from the last SENT value
    assert not f.should_send("v", 230.6, good, 5000)
    assert f.should_send("v", 230.6, good, 12_000)  # max interval
    assert f.should_send("v", 230.6, Quality.TIMEOUT, 12_500)  # quality change always goes
    assert f.should_send("s", 1, good, 0)
    assert not f.should_send("s", 1, good, 100)
    assert f.should_send("s", 2, good, 200)
    assert all(f.should_send("a", 7, good, t) for t in range(5))  # no option: every poll
    off = ReportFilter(points, enabled=False)
    assert all(off.should_send("s", 1, good, t) for t in range(3))


async def test_probe_shows_both_bases_and_all_orders() -> None:
    values = {**PUMP_VALUES, "outlet_pressure_bar": 123456.0}
    async with ProfileServer([Unit(1, TEST_PUMP, values)]) as server:
        # float32 123456.0 sits at PDU 2..3 (register numbers 3..4 in a 1-based manual)
        zero = await probe("127.0.0.1", server.port, unit=1, address=2, count=2)
        one = await probe("127.0.0.1", server.port, unit=1, address=3, count=2)
    rows = {name: (z, o) for name, z, o in interpretations(zero)}
    assert rows["float32 ABCD"][0] == "123456"
    assert rows["float32 ABCD"][1] != "123456"
    rows_one = {name: (z, o) for name, z, o in interpretations(one)}
    assert rows_one["float32 ABCD"][1] == "123456"  # right if the manual's numbers are 1-based
    assert zero.registers[zero.address - zero.start:][:2] == encode_raw("float32", 123456.0)
    assert rows["uint16"][0] == str(0x47F1)
