"""The generated community with field devices: lift IoT boxes (two families) and ISAPI gate
controllers in place of the synthetic Modbus lift and MQTT gate, served and listed in the inventory
the agent reads (ISAPI controllers with their URL and login)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import orjson

from edge.config import AgentConfig, UplinkConfig
from edge.inventory import merge_inventory
from simulators import SimulatedFleet, generate_fleet

ROOT = Path(__file__).resolve().parents[2]


def test_generated_field_fleet_profiles() -> None:
    spec = generate_fleet(18, field_devices=True)
    profiles = {d.id: d.profile for d in spec.devices}
    assert profiles["b1-lift-1"] == "lift-box-a"
    assert profiles["b1-lift-2"] == "lift-box-b"
    assert profiles["b1-gate-1"] == "hikvision-isapi-acs"
    assert profiles["b1-gate-2"] == "access-gate"   # the second gate of a building stays an MQTT gate
    assert {d.profile for d in generate_fleet(18).devices} >= {"elevator-gbt24476", "access-gate"}


async def test_field_fleet_serves_isapi_and_the_agent_reads_its_inventory(tmp_path: Path) -> None:
    async with SimulatedFleet(generate_fleet(9, field_devices=True)) as fleet:
        inventory = fleet.inventory
        door = next(d for d in inventory["devices"] if d["profile"] == "hikvision-isapi-acs")
        assert door["transport"] == "isapi"
        async with httpx.AsyncClient(timeout=5) as client:
            anonymous = await client.get(f"{door['url']}/ISAPI/Event/notification/alertStream")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Digest ")
        path = tmp_path / "inventory.json"
        path.write_bytes(orjson.dumps(inventory))
    config = merge_inventory(AgentConfig(gateway="gw-1", community="demo", uplink=UplinkConfig(url="mqtt://h:1")),
                             path)
    assert [(d.id, d.url, d.username) for d in config.isapi.devices] == [
        (door["id"], door["url"], door["username"])]
    assert config.isapi.devices[0].secret() == door["password"]
    mqtt = {d.id: d.profile for d in config.mqtt_devices.devices}
    assert mqtt["b1-lift-1"] == "lift-box-a"
    assert mqtt["b1-lift-2"] == "lift-box-b"


def test_sim_run_field_devices_cli(tmp_path: Path) -> None:
    inventory = tmp_path / "inventory.json"
    env = {**os.environ, "GUANJIA_MQTT_URL": "", "GUANJIA_DEVICES_MQTT_URL": ""}
    done = subprocess.run([sys.executable, "-m", "guanjia.app.cli.main", "sim", "run", "--devices", "9",
                           "--field-devices", "--inventory", str(inventory), "--control-port", "-1",
                           "--duration", "1"], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert "isapi http://127.0.0.1:" in done.stdout
    assert stat.S_IMODE(inventory.stat().st_mode) == 0o600   # it holds the controllers' logins
    entries = {d["id"]: d for d in orjson.loads(inventory.read_bytes())["devices"]}
    assert entries["b1-gate-1"]["transport"] == "isapi"
    assert entries["b1-lift-2"]["topic"].endswith("/b1-lift-2/up")
    wrong = subprocess.run([sys.executable, "-m", "guanjia.app.cli.main", "sim", "run", "--fleet", "x.yaml",
                            "--field-devices"], capture_output=True, text=True, timeout=60, cwd=ROOT, env=env,
                           check=False)
    assert wrong.returncode != 0
    assert "--field-devices" in wrong.stderr + wrong.stdout
