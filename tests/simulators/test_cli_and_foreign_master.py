"""The command line: a foreign Modbus master (mbpoll) reads a running `guanjia sim run`; bad files fail cleanly."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

GUANJIA = [sys.executable, "-m", "guanjia.app.cli.main"]
ROOT = Path(__file__).resolve().parents[2]


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GUANJIA, *args], capture_output=True, text=True, timeout=60, cwd=cwd or ROOT,
                          env={**os.environ, "GUANJIA_MQTT_URL": "", "GUANJIA_DEVICES_MQTT_URL": ""}, check=False)


@pytest.fixture(scope="module")
def running_sim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """`guanjia sim run` as a user starts it, with its inventory file."""
    tmp = tmp_path_factory.mktemp("sim")
    inventory = tmp / "inventory.json"
    fleet = tmp / "fleet.yaml"
    fleet.write_text(
        "community: cli\n"
        "devices:\n"
        "  - {id: m1, profile: eastron-sdm630, unit: 1}\n"
        "  - {id: p1, profile: vfd-pump, unit: 2}\n"
        "  - {id: l1, profile: elevator-gbt24476, unit: 3}\n"
    )
    proc = subprocess.Popen([*GUANJIA, "sim", "run", "--fleet", str(fleet), "--inventory", str(inventory),
                             "--control-port", "-1"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env={**os.environ, "GUANJIA_MQTT_URL": ""})
    try:
        deadline = time.monotonic() + 30
        while not inventory.exists():
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            assert time.monotonic() < deadline, "simulator did not write its inventory"
            time.sleep(0.1)
        yield {d["id"]: d for d in json.loads(inventory.read_text())["devices"]}
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        assert proc.returncode == 0, out
        assert "Traceback" not in out


def _mbpoll(*args: str) -> list[float]:
    out = subprocess.run(["mbpoll", "-m", "tcp", "-1", "-o", "2", *args], capture_output=True, text=True,
                         timeout=20, check=True).stdout
    return [float(v) for v in re.findall(r"^\[\d+\]:\s+(-?[\d.]+)", out, re.M)]


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed (Debian: apt-get install mbpoll)")
def test_mbpoll_reads_sensible_values_at_documented_addresses(running_sim: dict[str, Any]) -> None:
    meter, pump, lift = running_sim["m1"], running_sim["p1"], running_sim["l1"]
    common = ["-p", str(meter["port"]), meter["host"]]
    # Eastron manual references: 30001 L1 voltage, 30071 frequency (1-based, mbpoll's default), float ABCD
    volts = _mbpoll("-a", str(meter["unit"]), "-t", "3:float", "-B", "-r", "1", "-c", "3", *common)
    assert len(volts) == 3
    assert all(215 < v < 245 for v in volts), volts
    (freq,) = _mbpoll("-a", str(meter["unit"]), "-t", "3:float", "-B", "-r", "71", *common)
    assert 49.8 < freq < 50.2
    # pump set: 0-based PDU 2002 pressure setpoint, 0.01 bar
    (setpoint,) = _mbpoll("-a", str(pump["unit"]), "-0", "-t", "4", "-r", "2002", "-p", str(pump["port"]), pump["host"])
    assert setpoint == 400
    (floor,) = _mbpoll("-a", str(lift["unit"]), "-0", "-t", "3", "-r", "3", "-p", str(lift["port"]), lift["host"])
    assert 1 <= floor <= 18


def test_bad_fleet_file_reports_file_line_field(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("community: x\ndevices:\n  - {id: a, profile: eastron-sdm630}\n"
                     "  - {id: b, profile: sdm999, unit: 2}\n  - {id: c, profil: vfd-pump}\n")
    result = _run("sim", "run", "--fleet", str(fleet))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert f"{fleet}:5: devices.2.profil: unknown field (check the spelling)" in lines
    assert f"{fleet}:5: devices.2.profile: field required" in lines


def test_unknown_profile_names_the_known_ones(tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("community: x\ndevices:\n  - {id: a, profile: eastron-sdm630}\n  - {id: b, profile: sdm999}\n")
    result = _run("sim", "run", "--fleet", str(fleet))
    assert result.returncode == 2
    assert result.stderr.startswith(f"{fleet}:4: devices.1.profile: unknown profile 'sdm999'; known profiles: ")
    assert "eastron-sdm630" in result.stderr


def test_bad_scenario_file(tmp_path: Path) -> None:
    scenario = tmp_path / "s.yaml"
    scenario.write_text("faults:\n  - {device: b1-lift-1, fault: dry_run}\n  - {device: zz*, fault: offline, at: 5x}\n")
    result = _run("sim", "run", "--devices", "5", "--scenario", str(scenario))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"{scenario}:3: faults.1.at: Value error, '5x' is not a duration" in result.stderr
    scenario.write_text("faults:\n  - {device: b1-lift-1, fault: dry_run}\n  - {device: zz*, fault: offline}\n")
    result = _run("sim", "run", "--devices", "5", "--scenario", str(scenario))
    lines = result.stderr.splitlines()
    assert any(line.startswith(f"{scenario}:2: faults.0.fault: b1-lift-1 (elevator) cannot have 'dry_run'")
               for line in lines), lines
    assert f"{scenario}:3: faults.1.device: no device of the fleet matches 'zz*'" in lines


def test_profiles_check_command(tmp_path: Path) -> None:
    assert _run("profiles", "check").returncode == 0
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: x\nkind: meter\ntransport: modbus\ndescription: d\nmodbus: {}\n"
                   "points:\n  - {name: v, table: input_register, address: 0, dtype: float32, poll_group: fast}\n")
    result = _run("profiles", "check", str(bad))
    assert result.returncode == 2
    assert f"{bad}:7: points.0.poll_group: unknown poll group 'fast'; defined: default" in result.stderr
