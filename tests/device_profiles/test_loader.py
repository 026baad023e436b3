"""Profile loading: the built-ins are valid, and broken files say file:line: field: message."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_profiles import ProfileError, builtin_profiles, find_profile, load_profile
from device_profiles.payload import decode_payload, encode_payload
from guanjia.core.errors import ConfigError

GOOD = """\
id: test-meter
kind: meter
transport: modbus
description: a test meter
modbus:
  address_base: {base}
  word_order: little
poll_groups: {{fast: 1.0}}
points:
  - name: voltage
    table: input_register
    address: {address}
    dtype: float32
    poll_group: fast
  - name: current
    table: input_register
    address: 10
    dtype: float32
    poll_group: fast
"""


def _write(tmp_path: Path, text: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _issues(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    return [str(issue) for issue in info.value.issues]


def test_every_builtin_profile_loads() -> None:
    profiles = builtin_profiles()
    assert set(profiles) >= {"eastron-sdm630", "eastron-sdm120", "vfd-pump", "elevator-gbt24476", "access-gate"}
    for profile in profiles.values():
        assert profile.points
        assert profile.description


def test_documented_addresses() -> None:
    sdm630 = find_profile("eastron-sdm630")
    assert sdm630.point("voltage_l1").address == 0
    assert sdm630.point("power_total").address == 0x34
    assert sdm630.point("frequency").address == 0x46
    assert sdm630.point("energy_import").address == 0x48
    assert sdm630.point("energy_total").address == 0x156
    assert {p.table for p in sdm630.points if p.poll_group == "fast"} == {"input_register"}
    assert sdm630.modbus is not None
    assert sdm630.modbus.max_registers_per_read == 60
    assert find_profile("eastron-sdm120").point("frequency").address == 0x46
    elevator = find_profile("elevator-gbt24476")
    assert elevator.synthetic
    assert "passengers_trapped" in (elevator.point("fault_code").enum or {}).values()
    pump = find_profile("vfd-pump")
    assert pump.point("status_word").address == 3
    assert pump.point("run_hours").register_count == 2
    assert pump.point("pressure_setpoint").writable


def test_one_based_profile_is_shifted_and_default_orders_apply(tmp_path: Path) -> None:
    profile = load_profile(_write(tmp_path, GOOD.format(base=1, address=1)))
    assert profile.point("voltage").address == 0
    assert profile.point("current").address == 9
    assert profile.point("voltage").word_order == "little"


def test_zero_address_in_one_based_profile(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.format(base=1, address=0))
    issues = _issues(path)
    assert issues == [f"{path}:12: points.0.address: Value error, address is below the profile's address_base "
                      "(a 1-based profile starts at 1)"]


def test_typo_in_field_name(tmp_path: Path) -> None:
    text = GOOD.format(base=0, address=0).replace("    dtype: float32\n", "    dtpye: float32\n", 1)
    path = _write(tmp_path, text)
    assert f"{path}:13: points.0.dtpye: unknown field (check the spelling)" in _issues(path)


def test_bad_dtype(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.format(base=0, address=0).replace("dtype: float32", "dtype: float16", 1))
    issues = _issues(path)
    assert len(issues) == 1
    assert issues[0].startswith(f"{path}:13: points.0.dtype: Input should be 'bool', 'int16'")


def test_bad_address(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.format(base=0, address=70000))
    assert _issues(path)[0].startswith(f"{path}:12: points.0.address: Input should be less than or equal to 65535")


def test_overlap_and_semantics(tmp_path: Path) -> None:
    text = GOOD.format(base=0, address=9).replace("    poll_group: fast\n", "    poll_group: slow\n", 1)
    path = _write(tmp_path, text)
    issues = _issues(path)
    assert f"{path}:14: points.0.poll_group: unknown poll group 'slow'; defined: fast" in issues
    assert f"{path}:17: points.1.address: current at 10 overlaps voltage in the input_register table (ends at 10)" \
        in issues


@pytest.mark.parametrize(("extra", "field", "message"), [
    ("    enum: {0: a}\n", "points.0.enum", "enum labels given but dtype is 'float32'"),
    ("    writable: true\n", "points.0.writable", "input_registers are read-only"),
    ("    bits: {1: x}\n", "points.0.bits", "bits given but dtype is 'float32'"),
])
def test_semantic_errors_name_the_field(tmp_path: Path, extra: str, field: str, message: str) -> None:
    text = GOOD.format(base=0, address=0).replace("    poll_group: fast\n  - name: current",
                                                  f"    poll_group: fast\n{extra}  - name: current")
    path = _write(tmp_path, text)
    issues = _issues(path)
    assert any(i.startswith(f"{path}:15: {field}: {message}") for i in issues), issues


def test_yaml_syntax_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "id: [unclosed\n")
    assert _issues(path)[0].startswith(f"{path}:2: (document): YAML syntax")


def test_unknown_profile_lists_known_ones() -> None:
    with pytest.raises(ProfileError, match=r"unknown profile 'sdm999'; known profiles: .*eastron-sdm630"):
        find_profile("sdm999")


def test_gate_payload_round_trip() -> None:
    gate = find_profile("access-gate")
    values = {"door_state": 1, "passages_in": 12, "forced_open": True, "mode": 0, "heartbeat": 7}
    payload = encode_payload(gate, values, 1_700_000_000_000)
    assert b'"door":"open"' in payload
    assert b'"passages":{"in":12}' in payload
    ts, decoded = decode_payload(gate, payload)
    assert ts == 1_700_000_000_000
    assert decoded == values
