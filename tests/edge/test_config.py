"""Agent config: the example loads, mistakes are reported as file:line: field: message, inventory merge."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge.config import load_config, parse_size
from edge.inventory import merge_inventory
from guanjia.core.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "edge" / "examples" / "agent.yaml"


def test_example_config_loads_and_resolves_paths() -> None:
    config = load_config(EXAMPLE)
    assert config.gateway == "gw-1"
    assert config.outbox.path == EXAMPLE.parent / "outbox.db"
    assert config.outbox.max_bytes == 512_000_000
    assert config.links[0].key == "tcp://127.0.0.1:5020"


def test_typo_and_bad_value_name_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "gateway: gw-1\n"
        "community: demo\n"
        "uplink:\n"
        "  url: mqtt://u:p@localhost:1883\n"
        "outbox:\n"
        "  max_byte: 10MB\n"
        "links:\n"
        "  - type: tcp\n"
        "    host: 10.0.0.5\n"
        "    port: 70000\n"
        "    devices:\n"
        "      - {id: m1, profile: eastron-sdm630, unit: 1}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    text = str(info.value)
    assert f"{path}:6: outbox.max_byte: unknown field" in text
    assert f"{path}:10: links.0.port: Input should be less than or equal to 65535" in text


def test_duplicate_device_ids_refused(tmp_path: Path) -> None:
    path = tmp_path / "agent.yaml"
    path.write_text(
        "gateway: gw-1\ncommunity: demo\nuplink: {url: 'mqtt://u:p@h:1883'}\n"
        "links:\n  - {type: tcp, host: a, devices: [{id: m1, profile: p}]}\n"
        "  - {type: tcp, host: b, devices: [{id: m1, profile: p}]}\n"
    )
    with pytest.raises(ConfigError, match="appears twice"):
        load_config(path)


def test_sizes() -> None:
    assert parse_size("512MB") == 512_000_000
    assert parse_size("1GiB") == 1024**3
    assert parse_size(4096) == 4096
    with pytest.raises(ValueError, match="not a size"):
        parse_size("lots")


def test_inventory_groups_devices_per_port(tmp_path: Path) -> None:
    inv = tmp_path / "inv.json"
    inv.write_text(json.dumps({"devices": [
        {"id": "b1-meter-1", "kind": "meter", "profile": "eastron-sdm630", "host": "127.0.0.1", "port": 5020,
         "unit": 1},
        {"id": "b1-lift-1", "kind": "elevator", "profile": "elevator-gbt24476", "host": "127.0.0.1", "port": 5020,
         "unit": 2},
        {"id": "b1-pump-9", "kind": "pump", "profile": "vfd-pump", "host": "127.0.0.1", "port": 5021, "unit": 1},
        {"id": "b1-gate-1", "kind": "gate", "profile": "access-gate", "transport": "mqtt",
         "topic": "devices/demo/b1-gate-1/state"},
        {"id": "b1-meter-1", "profile": "eastron-sdm630", "host": "127.0.0.1", "port": 9, "unit": 9},
    ]}))
    config = merge_inventory(load_config(EXAMPLE), inv)
    by_key = {link.key: [d.id for d in link.devices] for link in config.links}
    assert by_key["tcp://127.0.0.1:5020"] == ["b1-meter-1", "b1-pump-1", "b1-lift-1"]  # config's own entry kept
    assert by_key["tcp://127.0.0.1:5021"] == ["b1-pump-9"]
    assert "tcp://127.0.0.1:9" not in by_key
    assert [d.id for d in config.mqtt_devices.devices] == ["b1-gate-1"]


def test_isapi_controllers_config(tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "door").write_text("Hik12345\n")
    path = tmp_path / "agent.yaml"
    path.write_text(
        "gateway: gw-1\ncommunity: demo\nuplink: {url: 'mqtt://u:p@h:1883'}\n"
        "isapi:\n"
        "  devices:\n"
        "    - {id: b1-door-1, profile: hikvision-isapi-acs, url: 'http://10.0.3.21/', password_file: secrets/door}\n"
    )
    config = load_config(path)
    door = config.isapi.devices[0]
    assert door.url == "http://10.0.3.21"
    assert door.secret() == "Hik12345"            # the file next to the config, read without the newline
    assert "b1-door-1" in config.all_device_ids()
    path.write_text(
        "gateway: gw-1\ncommunity: demo\nuplink: {url: 'mqtt://u:p@h:1883'}\n"
        "mqtt_devices: {devices: [{id: b1-door-1, profile: access-gate}]}\n"
        "isapi:\n"
        "  devices:\n"
        "    - id: b1-door-1\n"
        "      profile: hikvision-isapi-acs\n"
        "      url: 10.0.3.21\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert f"{path}:9: isapi.devices.0.url: Value error, must start with http:// or https://" in str(info.value)
