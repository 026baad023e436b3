"""Lift IoT box families: vendor fault codes and enums mapped onto the lift vocabulary (困人 →
passengers_trapped), both ways, and mistakes in a box family's code table named by file:line."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from device_profiles import find_profile, load_profile
from device_profiles.errors import CodecError
from device_profiles.payload import decode_payload, encode_payload
from guanjia.core.errors import ConfigError

TS = 1_764_926_120_000


def test_family_a_entrapment_and_other_faults() -> None:
    profile = find_profile("lift-box-a")
    payload = orjson.dumps({"ts": TS, "run": {"mode": "normal", "moving": False, "dir": "up", "floor": 7,
                                              "door": "closed", "doorZone": False, "occupied": True},
                            "faults": ["E08", "E01", "E14"], "seq": 9})
    ts, values = decode_payload(profile, payload)
    assert ts == TS
    assert values["fault_code"] == 1                      # E01 困人: the most urgent of the list
    assert profile.point("fault_code").enum_name(int(values["fault_code"])) == "passengers_trapped"
    assert values["alarm_word"] == (1 << 0) | (1 << 7) | (1 << 13)   # trapped, out of leveling, overload
    assert values["in_door_zone"] is False
    assert values["floor"] == 7


def test_family_b_numeric_codes_and_units() -> None:
    profile = find_profile("lift-box-b")
    payload = orjson.dumps({"t": TS // 1000, "m": 1, "mv": 0, "d": 2, "f": -1, "dr": 1, "v": -175,
                            "rh": 45678, "err": [30]})
    ts, values = decode_payload(profile, payload)
    assert ts == TS
    assert values["service_mode"] == 0          # the family's 1 is our normal (0)
    assert values["direction"] == 2
    assert values["door_state"] == 1
    assert values["speed"] == pytest.approx(-1.75)
    assert values["run_hours"] == pytest.approx(4567.8)
    assert values["fault_code"] == 1
    assert values["alarm_word"] == 1


def test_no_fault_and_unknown_codes() -> None:
    profile = find_profile("lift-box-b")
    _, clear = decode_payload(profile, orjson.dumps({"err": []}))
    assert clear == {"alarm_word": 0, "fault_code": 0}
    _, odd = decode_payload(profile, orjson.dumps({"err": [777]}))   # not in the table: "*" → other_fault
    assert profile.point("fault_code").enum_name(int(odd["fault_code"])) == "other_fault"
    assert odd["alarm_word"] == 1 << 14
    with pytest.raises(CodecError, match="unknown code 42"):
        decode_payload(profile, orjson.dumps({"m": 42}))              # an enum table without "*"
    with pytest.raises(CodecError):
        decode_payload(profile, orjson.dumps({"err": {"code": 30}}))


@pytest.mark.parametrize("family", ["lift-box-a", "lift-box-b"])
def test_round_trip_speaks_the_family_codes(family: str) -> None:
    profile = find_profile(family)
    values = {"service_mode": 1, "car_moving": True, "direction": 1, "floor": 12, "door_state": 0,
              "in_door_zone": False, "load_percent": 40, "passenger_present": True, "fault_code": 2,
              "alarm_word": (1 << 1) | (1 << 3), "speed": 1.75, "run_count": 123456, "run_hours": 4567.8,
              "door_cycles": 234567, "heartbeat": 5}
    payload = encode_payload(profile, values, TS)
    wire = orjson.loads(payload)
    faults = wire["faults"] if family == "lift-box-a" else wire["err"]
    assert sorted(map(str, faults)) == (["E02", "E04"] if family == "lift-box-a" else ["11", "12"])
    ts, decoded = decode_payload(profile, payload)
    assert ts == TS
    assert decoded["fault_code"] == 2          # door_lock_fault is more urgent than safety_circuit_open
    for name, value in values.items():
        if name != "fault_code":
            assert decoded[name] == pytest.approx(value), name


def test_a_wrong_label_in_a_code_table_names_file_and_line(tmp_path: Path) -> None:
    source = Path(__file__).resolve().parents[2] / "device_profiles" / "library" / "lift-box-b.yaml"
    text = source.read_text(encoding="utf-8").replace("30: passengers_trapped", "30: passenger_trapped")
    bad = tmp_path / "my-box.yaml"
    bad.write_text(text, encoding="utf-8")
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "passenger_trapped" in row)
    with pytest.raises(ConfigError) as info:
        load_profile(bad)
    message = str(info.value)
    assert f"my-box.yaml:{line}" in message
    assert "passenger_trapped" in message
    assert "passengers_trapped" in message
