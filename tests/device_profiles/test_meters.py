"""DL/T 645 and CJ/T 188 profiles: the built-in ones load, and a mistake names file:line: field."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_profiles import find_profile, load_profile
from device_profiles.errors import CodecError
from device_profiles.meters import decode_point, encode_point, metering_value, plan_reads
from device_profiles.protocols import cjt188, dlt645
from guanjia.core.errors import ConfigError

HEAD = "id: my-meter\nkind: meter\ntransport: {transport}\ndescription: x\npoints:\n"


@pytest.mark.parametrize(("transport", "point", "field", "needle"), [
    ("dlt645", "  - {name: v, di: '0201010'}", "points.0.di", "8 hex digits"),
    ("dlt645", "  - {name: v, di: '0201ABCD'}", "points.0.di", "give its format"),
    ("dlt645", "  - {name: v, di: '0201ABCD', bcd: 'XX.X'}", "points.0.bcd", "even count"),
    ("dlt645", "  - {name: v}", "points.0.di", "needs di"),
    ("dlt645", "  - {name: v, di: '02010100', table: input_register}", "points.0.table", "no Modbus table"),
    ("cjt188", "  - {name: w, field: flow}", "points.0.field", "flow_total"),
    ("modbus", "  - {name: w, table: input_register, di: '02010100'}", "points.0.di", "DL/T 645"),
])
def test_mistakes_name_file_line_and_field(tmp_path: Path, transport: str, point: str, field: str,
                                           needle: str) -> None:
    path = tmp_path / "p.yaml"
    extra = "modbus: {}\n" if transport == "modbus" else ""
    path.write_text(HEAD.format(transport=transport) + point + "\n" + extra, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    text = str(info.value)
    assert f"{path}:6: {field}:" in text, text
    assert needle in text, text


def test_a_vendor_identifier_with_its_format(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(HEAD.format(transport="dlt645") + "  - {name: temp, di: '04A00101', bcd: 'XXX.X', signed: true}\n",
                    encoding="utf-8")
    point = load_profile(path).point("temp")
    assert decode_point(point, encode_point(point, -12.3)) == -12.3


def test_units_and_enums_through_the_shared_mapping() -> None:
    power = find_profile("dlt645-3phase").point("power_total")
    assert encode_point(power, 1500.0) == bytes([0x00, 0x50, 0x01])  # 1.5 kW on the wire
    assert decode_point(power, bytes([0x00, 0x50, 0x01])) == 1500.0
    water = find_profile("cjt188-water")
    reading = cjt188.Metering(12.5, 10.0, "2026-01-01 00:00:00", 1, True)
    assert metering_value(water.point("valve"), reading) == 1
    assert metering_value(water.point("battery_low"), reading) is True
    assert metering_value(water.point("water_total"), reading) == 12.5


def test_points_of_one_family_share_a_block_read() -> None:
    profile = find_profile("dlt645-3phase")
    fast = plan_reads(profile.points_in("fast"))
    assert sorted(dlt645.di_text(r.di) for r in fast) == ["0201FF00", "0202FF00", "02030000", "02060000", "02800002"]
    slow = plan_reads(profile.points_in("slow"))
    energy = next(r for r in slow if r.di == 0x0001FF00)
    assert [(p.name, offset) for p, offset in energy.points] == [
        ("energy_import", 0), ("energy_import_t1", 4), ("energy_import_t2", 8), ("energy_import_t3", 12),
        ("energy_import_t4", 16)]
    assert len(slow) == 5  # and the max demand (trailing time bytes) is read alone
    assert len(plan_reads(profile.points, blocks=False)) == len(profile.points)


def test_a_block_reply_with_more_tariffs_than_asked_decodes() -> None:
    profile = find_profile("dlt645-3phase")
    energy = next(r for r in plan_reads(profile.points_in("slow")) if r.is_block)
    fmt = dlt645.DATA_IDS[0x00010000]
    raw = b"".join(dlt645.encode_value(100.0 + i, fmt) for i in range(9))  # total + 8 tariffs
    assert energy.decode(raw) == {"energy_import": 100.0, "energy_import_t1": 101.0, "energy_import_t2": 102.0,
                                  "energy_import_t3": 103.0, "energy_import_t4": 104.0}
    with pytest.raises(CodecError):
        energy.decode(raw[:12])


def test_a_gap_in_a_family_means_single_reads(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    points = "  - {name: va, di: '02010100'}\n  - {name: vc, di: '02010300'}\n"
    path.write_text(HEAD.format(transport="dlt645") + points, encoding="utf-8")
    reads = plan_reads(load_profile(path).points)
    assert sorted(r.di for r in reads) == [0x02010100, 0x02010300]


def test_profiles_show_lists_identifiers_and_fields() -> None:
    from typer.testing import CliRunner

    from guanjia.app.cli.main import app

    dlt = CliRunner().invoke(app, ["profiles", "show", "dlt645-3phase"])
    assert dlt.exit_code == 0, dlt.output
    assert "di 02010100 XXX.X" in dlt.output
    water = CliRunner().invoke(app, ["profiles", "show", "cjt188-water"])
    assert water.exit_code == 0, water.output
    assert "901F flow_total" in water.output
