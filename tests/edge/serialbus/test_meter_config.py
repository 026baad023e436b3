"""Meter buses in the agent config: what a commissioning engineer gets wrong, reported at file:line."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge.config import load_config
from guanjia.core.errors import ConfigError

HEAD = "gateway: gw-1\ncommunity: demo\nuplink: {url: 'mqtt://127.0.0.1:1883'}\nlinks:\n"


def write(tmp_path: Path, links: str) -> Path:
    path = tmp_path / "agent.yaml"
    path.write_text(HEAD + links, encoding="utf-8")
    return path


def test_a_meter_bus_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, (
        "  - type: rtu-over-tcp\n    protocol: dlt645\n    host: 10.0.0.6\n    port: 8899\n    baudrate: 2400\n"
        "    parity: E\n    devices:\n      - {id: b1-submeter-1, profile: dlt645-3phase, address: '000000000001'}\n"
        "  - type: rtu\n    protocol: cjt188\n    serial_port: /dev/ttyUSB1\n"
        "    devices: [{id: b1-water-1, profile: cjt188-water, address: '00000000000001'}]\n")))
    assert [link.protocol for link in config.links] == ["dlt645", "cjt188"]
    assert config.links[0].devices[0].address == "000000000001"


@pytest.mark.parametrize(("links", "line", "needle"), [
    ("  - {type: tcp, protocol: dlt645, host: h, devices: []}\n", 5, "rtu-over-tcp"),
    ("  - type: rtu-over-tcp\n    protocol: dlt645\n    host: h\n"
     "    devices: [{id: m1, profile: dlt645-3phase, address: '12345'}]\n", 8, "links.0.devices.0.address: a dlt645"),
    ("  - type: rtu-over-tcp\n    protocol: cjt188\n    host: h\n"
     "    devices: [{id: m1, profile: cjt188-water}]\n", 8, "14-digit address"),
    ("  - type: rtu-over-tcp\n    protocol: dlt645\n    host: h\n    devices:\n"
     "      - {id: m1, profile: dlt645-3phase, address: '000000000001'}\n"
     "      - {id: m2, profile: dlt645-3phase, address: '000000000001'}\n", 10,
     "links.0.devices.1.address: address 000000000001 is already devices.0's"),
    ("  - type: rtu-over-tcp\n    protocol: dlt465\n    host: h\n", 6, "protocol"),
])
def test_mistakes_name_file_line_and_field(tmp_path: Path, links: str, line: int, needle: str) -> None:
    path = write(tmp_path, links)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert f"{path}:{line}:" in text, text
    assert needle in text, text
