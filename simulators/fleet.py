"""Fleet files: which devices a simulator serves, and the generated demo community.

A fleet YAML names the community and its devices (id, profile, Modbus unit id, building, physics
parameters)::

    community: demo
    layout: shared            # shared: one TCP port per converter (many unit ids); per-device: one port each
    devices:
      - {id: b1-meter-1, profile: eastron-sdm630, unit: 1, building: b1}
      - {id: b1-pump-1, profile: vfd-pump, unit: 2, building: b1, params: {setpoint: 4.5}}
      - {id: b1-gate-1, profile: access-gate, building: b1}

In the shared layout, Modbus devices are grouped by ``converter`` (default: their building) behind one
TCP port each, like an RS-485-to-Ethernet converter in each building's plant room.

Every mistake is reported as ``file:line: field: message`` — including an unknown profile, which
lists the profiles that exist.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from device_profiles import Profile, ProfileError, find_profile
from guanjia.core.config import LineMap, line_for, parse_model, read_yaml
from guanjia.core.errors import ConfigError, ConfigIssue

Layout = Literal["shared", "per-device"]
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"
MAX_UNIT = 247


class DeviceSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=ID_PATTERN)
    profile: str
    unit: int | None = Field(None, ge=1, le=MAX_UNIT, description="Modbus unit id (auto-assigned when omitted)")
    address: str | None = Field(None, pattern=r"^\d{12}(\d\d)?$",
                                description="DL/T 645 (12 digits) / CJ/T 188 (14 digits) meter address (auto)")
    building: str | None = Field(None, pattern=ID_PATTERN)
    converter: str | None = Field(None, pattern=ID_PATTERN, description="shared layout: which port it sits behind")
    port: int | None = Field(None, ge=1, le=65535, description="per-device layout: fixed port")
    params: dict[str, Any] = Field(default_factory=dict, description="physics parameters of the model")


class FleetSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    community: str = Field(pattern=ID_PATTERN)
    layout: Layout = "shared"
    host: str = "127.0.0.1"
    devices: list[DeviceSpec] = Field(min_length=1)


def check_fleet(spec: FleetSpec, source: str = "<fleet>", lines: LineMap | None = None) -> dict[str, Profile]:
    """Resolve every device's profile and check ids/units; return ``{device id: profile}``."""
    lines = lines or {}
    issues: list[ConfigIssue] = []
    profiles: dict[str, Profile] = {}
    seen: Counter[str] = Counter()
    units: dict[tuple[str, int], str] = {}
    for index, device in enumerate(spec.devices):
        where = ("devices", index)
        seen[device.id] += 1
        if seen[device.id] == 2:
            issues.append(ConfigIssue(source, line_for((*where, "id"), lines), f"devices.{index}.id",
                                      f"duplicate device id {device.id!r}"))
        try:
            profile = find_profile(device.profile)
        except ProfileError as exc:
            issues.append(ConfigIssue(source, line_for((*where, "profile"), lines), f"devices.{index}.profile",
                                      str(exc)))
            continue
        except ConfigError as exc:
            issues.extend(exc.issues)
            continue
        profiles[device.id] = profile
        if profile.transport == "modbus" and device.unit is not None and spec.layout == "shared":
            key = (converter_of(device), device.unit)
            if key in units:
                issues.append(ConfigIssue(source, line_for((*where, "unit"), lines), f"devices.{index}.unit",
                                          f"unit {device.unit} is already used by {units[key]} behind "
                                          f"converter {key[0]!r}"))
            units.setdefault(key, device.id)
    if issues:
        raise ConfigError(issues)
    return profiles


def converter_of(device: DeviceSpec) -> str:
    return device.converter or device.building or "main"


def parse_fleet(data: Any, source: str = "<fleet>", lines: LineMap | None = None) -> FleetSpec:
    lines = lines or {}
    spec = parse_model(FleetSpec, data, source, lines)
    check_fleet(spec, source, lines)
    return spec


def load_fleet(path: str | Path) -> FleetSpec:
    """Read and check a fleet file (file:line: field errors, unknown profiles name the known ones)."""
    data, lines, source = read_yaml(path)
    return parse_fleet(data, source, lines)


# ---------------------------------------------------------------------------------------------
# generated community


FIELD_PROFILES = {"elevator-gbt24476": ("lift-box-a", "lift-box-b"), "access-gate": ("hikvision-isapi-acs",)}
"""``field_devices``: the devices a Chinese community really has in place of the synthetic ones —
the n-th lift of a building on the n-th lift IoT box family, the first gate on an ISAPI controller."""


CALL_BUTTONS_PER_BUILDING = 2


def building_devices(building: str, index: int, *, serial_meters: bool = False,
                     field_devices: bool = False, call_buttons: bool = False) -> list[DeviceSpec]:
    """One building's plant: 2 lifts, 1 pump set, 1–2 gates, 4 meters (main + common areas).

    ``serial_meters`` adds what a real Chinese community has besides: three DL/T 645 public-area
    sub-meters (corridor lighting, lifts, pumps) on one RS-485 bus behind the building's converter,
    and in the first building a CJ/T 188 water meter on its own bus.

    With ``field_devices`` the lifts are lift IoT boxes (MQTT, one box family each) and the first
    gate an ISAPI access controller (HTTP alert stream) instead of the synthetic Modbus lift and the
    MQTT gate. Not the default: the chaos scenarios time a lift's outage by three failed Modbus
    polls, which a box (silent for three heartbeats) does not have.

    ``call_buttons`` adds the one-key call buttons (一键呼叫, MQTT) of elderly residents, two per
    building (``b1-call-1``…), pressed with the ``pressed`` fault.
    """
    b = building
    gates = 1 + index % 2
    devices = [
        DeviceSpec(id=f"{b}-meter-1", profile="eastron-sdm630", building=b, params={"base_kw": 30.0 + 5 * (index % 4)}),
        DeviceSpec(id=f"{b}-lift-1", profile="elevator-gbt24476", building=b),
        DeviceSpec(id=f"{b}-pump-1", profile="vfd-pump", building=b),
        DeviceSpec(id=f"{b}-gate-1", profile="access-gate", building=b),
        DeviceSpec(id=f"{b}-lift-2", profile="elevator-gbt24476", building=b),
        DeviceSpec(id=f"{b}-meter-2", profile="eastron-sdm630", building=b, params={"base_kw": 8.0}),
        DeviceSpec(id=f"{b}-meter-3", profile="eastron-sdm120", building=b),
        DeviceSpec(id=f"{b}-meter-4", profile="eastron-sdm120", building=b),
    ]
    if gates == 2:
        devices.append(DeviceSpec(id=f"{b}-gate-2", profile="access-gate", building=b))
    if serial_meters:
        devices += [DeviceSpec(id=f"{b}-submeter-{n}", profile="dlt645-3phase", building=b,
                               params={"base_kw": kw}) for n, kw in ((1, 4.0), (2, 12.0), (3, 6.0))]
        if index == 1:
            devices.append(DeviceSpec(id=f"{b}-water-1", profile="cjt188-water", building=b))
    if call_buttons:
        devices += [DeviceSpec(id=f"{b}-call-{n}", profile="call-button", building=b)
                    for n in range(1, CALL_BUTTONS_PER_BUILDING + 1)]
    if not field_devices:
        return devices
    out: list[DeviceSpec] = []
    seen: Counter[str] = Counter()
    for device in devices:
        choices = FIELD_PROFILES.get(device.profile, ())
        nth = seen[device.profile]
        seen[device.profile] += 1
        out.append(device.model_copy(update={"profile": choices[nth]}) if nth < len(choices) else device)
    return out


def generate_fleet(count: int, community: str = "demo", layout: Layout = "shared",
                   host: str = "127.0.0.1", *, serial_meters: bool = False, field_devices: bool = False,
                   call_buttons: bool = False) -> FleetSpec:
    """``count`` devices of the four kinds in building-sized proportions, named ``b1-lift-1`` etc.

    Buildings are filled in order (meter, lift, pump, gate first), so even a tiny fleet has one
    device of each kind.
    """
    if count < 1:
        raise ConfigError([ConfigIssue("--devices", None, "devices", "must be at least 1")])
    if not re.match(ID_PATTERN, community):
        raise ConfigError([ConfigIssue("--community", None, "community", f"{community!r} is not a valid id")])
    devices: list[DeviceSpec] = []
    index = 0
    while len(devices) < count:
        index += 1
        devices.extend(building_devices(f"b{index}", index, serial_meters=serial_meters, field_devices=field_devices,
                                        call_buttons=call_buttons))
    return FleetSpec(community=community, layout=layout, host=host, devices=devices[:count])
