"""A profile's ``commands:`` (momentary actions such as a gate's open): the shipped gates have
``open``; a command on a transport that cannot carry it, or an MQTT device without a command
topic, is an error naming file:line: field."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_profiles import find_profile
from device_profiles.loader import LIBRARY, load_profile
from guanjia.core.errors import ConfigError

GATE = LIBRARY / "access-gate.yaml"


def test_shipped_gates_open() -> None:
    for name in ("access-gate", "hikvision-isapi-acs"):
        command = find_profile(name).command("open")
        assert command is not None
        assert command.word == "open"
        assert command.label.zh == "远程开门"
    assert find_profile("access-gate").mqtt.command_topic_for("c1", "g1") == "devices/c1/g1/cmd"  # type: ignore[union-attr]
    assert find_profile("vfd-pump").commands == []


def _issues(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_profile(path)
    return [str(issue) for issue in info.value.issues]


def test_mqtt_command_needs_a_topic_and_a_name_of_its_own(tmp_path: Path) -> None:
    text = GATE.read_text().replace("  command_topic: devices/{community}/{device}/cmd\n", "").replace(
        '  - {name: open, label: {zh: "远程开门", en: "Open remotely"}, timeout_s: 5}\n',
        '  - {name: open, label: {zh: "远程开门", en: "Open remotely"}, timeout_s: 5}\n'
        '  - {name: mode, label: {zh: "模式", en: "Mode"}}\n')
    path = tmp_path / "gate.yaml"
    path.write_text(text)
    issues = _issues(path)
    line = next(n for n, ln in enumerate(text.splitlines(), 1) if ln.startswith("  - {name: open"))
    assert f"{path}:{line}: commands.0: an MQTT device takes commands on mqtt.command_topic: add it " \
           "(e.g. devices/{community}/{device}/cmd)" in issues
    assert f"{path}:{line + 1}: commands.1.name: 'mode' is a point; a command needs a name of its own" in issues


def test_modbus_device_has_no_actions(tmp_path: Path) -> None:
    pump = (LIBRARY / "vfd-pump.yaml").read_text()
    text = pump.replace("\npoints:\n", "\ncommands:\n  - {name: reset, label: {zh: 复位, en: Reset}}\npoints:\n", 1)
    path = tmp_path / "pump.yaml"
    path.write_text(text)
    assert any(": commands.0: a modbus device has no actions" in i for i in _issues(path))
