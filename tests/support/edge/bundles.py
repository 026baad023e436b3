"""Edge configuration bundles for the rollout tests and the fleet bench: a pump on a Modbus TCP
link whose profile is a bundle file (so a change of the profile alone reaches the device), a
site rule, and a broken copy of the profile that still validates but reads nothing the device has."""

from __future__ import annotations

import re

import yaml

from device_profiles.loader import LIBRARY

PUMP_PROFILE = (LIBRARY / "vfd-pump.yaml").read_text(encoding="utf-8")
PROFILE_FILE = "profiles/pump.yaml"


def devices_yaml(port: int, devices: list[tuple[str, int]], *, period_s: float | None = None) -> str:
    """``devices.yaml``: one tcp link to 127.0.0.1:``port`` with (device id, unit id) pumps."""
    entries = [{"id": device, "profile": PROFILE_FILE, "unit": unit, "report_by_exception": False,
                **({"period_s": period_s} if period_s else {})} for device, unit in devices]
    return yaml.safe_dump({"links": [{"type": "tcp", "host": "127.0.0.1", "port": port, "timeout_s": 0.5,
                                      "devices": entries}]}, sort_keys=False)


def pump_bundle(port: int, devices: list[tuple[str, int]], *, period_s: float | None = None) -> dict[str, str]:
    return {"devices.yaml": devices_yaml(port, devices, period_s=period_s), PROFILE_FILE: PUMP_PROFILE}


def broken_profile() -> str:
    """The pump profile with every register moved 3000 up: valid YAML, a valid profile, and a
    device that answers every read with ``illegal data address`` (the mistake of a wrong offset)."""
    return re.sub(r"address: (\d+)", lambda m: f"address: {int(m.group(1)) + 3000}", PUMP_PROFILE)


def pressure_rule(rule_id: str, above: float) -> str:
    """A site rule: outlet pressure above ``above`` bar raises an alarm at once."""
    return yaml.safe_dump({"version": 1, "rules": [{
        "id": rule_id, "title": {"zh": "出口压力偏高", "en": "Outlet pressure high"}, "severity": "minor",
        "kinds": ["pump"], "message": "{device}: outlet pressure {outlet_pressure} bar",
        "state": {"metric": "outlet_pressure", "above": above}}]}, sort_keys=False, allow_unicode=True)
