"""Display metadata: the shipped profiles label every point, ``profiles check`` refuses a point
without labels (file:line), and values read as words, units and flags in both languages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from device_profiles import builtin_profiles, load_profile
from device_profiles.checks import display_problems
from device_profiles.display import format_value, profile_for, state_labels
from device_profiles.model import Text
from guanjia.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]

LABELLED = """\
id: test-pump
kind: pump
transport: modbus
description: a test pump
modbus: {{}}
points:
  - {{name: running, table: coil, address: 0, dtype: bool, label: {{zh: 运行, en: Running}}, group: status}}
  - name: mode
    table: holding_register
    address: 1
    dtype: enum
    enum: {{0: auto, 1: manual}}
{mode_display}
  - {{name: pressure, table: holding_register, address: 2, scale: 0.01, unit: bar,
     label: {{zh: 压力, en: Pressure}}, group: hydraulic, precision: 2}}
"""
MODE_OK = """\
    label: {zh: 模式, en: Mode}
    group: status
    value_labels: {0: {zh: 自动, en: auto}, 1: {zh: 手动, en: manual}}"""


def _check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "guanjia.app.cli.main", "profiles", "check", str(path)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT, env=dict(os.environ), check=False)


def test_every_shipped_point_is_labelled() -> None:
    for profile in builtin_profiles().values():
        assert display_problems(profile) == [], profile.id
        for point in profile.points:
            assert point.label is not None, (profile.id, point.name)
            assert point.label.zh != point.name, (profile.id, point.name)


def test_labelled_profile_passes_the_check(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(LABELLED.format(mode_display=MODE_OK))
    load_profile(path, require_display=True)
    result = _check(path)
    assert result.returncode == 0, result.stderr


def test_check_refuses_a_point_without_labels_with_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(LABELLED.format(mode_display="    group: status"))
    with pytest.raises(ConfigError) as info:
        load_profile(path, require_display=True)
    issues = [str(i) for i in info.value.issues]
    assert any(i.startswith(f"{path}:8: points.1.label: point 'mode' needs label") for i in issues), issues
    assert any(f"{path}:8: points.1.value_labels: enum code 0 (auto) needs value_labels" in i for i in issues), issues
    load_profile(path)  # the edge still polls an unlabelled profile
    result = _check(path)
    assert result.returncode == 2
    assert f"{path}:8: points.1.label: point 'mode' needs label: {{zh: ..., en: ...}}" in result.stderr.splitlines()


@pytest.mark.parametrize(("point_yaml", "field", "message"), [
    ("{name: x, table: holding_register, address: 0, scale: 0.1, label: {zh: 甲, en: X}, group: status}",
     "precision", "is fractional: give precision"),
    ("{name: x, table: holding_register, address: 0, label: {zh: 甲, en: X}}", "group", "needs group"),
    ("{name: x, table: holding_register, address: 0, dtype: bitfield, bits: {0: a, 1: b}, label: {zh: 甲, en: X}, "
     "group: faults, bit_labels: {0: {zh: 甲, en: a}}}", "bit_labels", "bit 1 (b) needs bit_labels"),
    ("{name: x, table: holding_register, address: 0, label: {zh: 甲, en: X}, group: status, "
     "value_labels: {0: {zh: 甲, en: a}}}", "value_labels", "apply to dtype enum or bool"),
])
def test_misplaced_display_metadata_names_the_field(tmp_path: Path, point_yaml: str, field: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(f"id: t\nkind: pump\ntransport: modbus\ndescription: t\nmodbus: {{}}\npoints:\n  - {point_yaml}\n")
    with pytest.raises(ConfigError) as info:
        load_profile(path, require_display=True)
    assert any(f"{path}:7: points.0.{field}: " in str(i) and message in str(i) for i in info.value.issues), \
        [str(i) for i in info.value.issues]


def test_values_read_as_words_units_and_flags() -> None:
    lift = builtin_profiles()["elevator-gbt24476"]
    assert format_value(lift.point("door_state"), 0) == Text(zh="关闭", en="closed")
    assert format_value(lift.point("car_moving"), 1.0) == Text(zh="运行", en="moving")
    assert format_value(lift.point("in_door_zone"), 1) == Text(zh="是", en="yes")
    assert format_value(lift.point("fault_code"), 1) == Text(zh="困人 (1)", en="passengers trapped (1)")
    assert format_value(lift.point("fault_code"), 99) == Text(zh="未知代码 99", en="unknown code 99")
    assert format_value(lift.point("alarm_word"), 0b10000000000001) == Text(zh="困人、超载",
                                                                           en="passengers trapped, overload")
    assert format_value(lift.point("alarm_word"), 0) == Text(zh="无", en="none")
    assert format_value(lift.point("door_state"), float("nan")) == Text(zh="无效值", en="invalid")
    assert format_value(lift.point("speed"), float("inf")).en == "invalid"
    assert format_value(lift.point("speed"), 1.2345) == Text(zh="1.23 m/s", en="1.23 m/s")
    assert format_value(lift.point("run_count"), 123456.0).zh == "123,456"
    pump = builtin_profiles()["vfd-pump"]
    assert format_value(pump.point("fault_code"), 0x2310).zh == "过流 (0x2310)"
    assert format_value(pump.point("motor_temperature"), 41.26).en == "41.3 °C"
    assert state_labels(pump.point("running")) == {0: Text(zh="停止", en="stopped"), 1: Text(zh="运行", en="running")}


def test_a_device_without_a_profile_id_reads_with_its_kinds_default() -> None:
    lift, meter = profile_for(None, "elevator"), profile_for("eastron-sdm120", "meter")
    assert lift is not None
    assert lift.id == "elevator-gbt24476"
    assert meter is not None
    assert meter.id == "eastron-sdm120"
    assert profile_for(None, "camera") is None
