"""Build link and device config from a simulator inventory JSON (``--inventory FILE``).

The simulators write what they serve — device id, kind, profile, host, port, unit id and MQTT
topics — so a new user points the agent at ``guanjia sim run --inventory inv.json`` output instead
of typing 500 devices. Modbus devices are grouped into one link per host:port (a shared-port
simulator layout becomes one link with many unit ids, like an RS-485 converter); DL/T 645 and
CJ/T 188 meters into one ``rtu-over-tcp`` link per converter port with their protocol; ISAPI controllers
(``transport: isapi``) come with their URL and login. Devices already in
the config file win (their settings are kept).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edge.config import AgentConfig, DeviceConfig, IsapiDeviceConfig, LinkConfig, MqttDeviceConfig, TcpLinkConfig
from guanjia.core.errors import ConfigError, ConfigIssue


def _entries(doc: Any) -> list[dict[str, Any]]:
    if isinstance(doc, dict):
        for key in ("devices", "inventory"):
            if isinstance(doc.get(key), list):
                return [d for d in doc[key] if isinstance(d, dict)]
    if isinstance(doc, list):
        return [d for d in doc if isinstance(d, dict)]
    return []


def _get(entry: dict[str, Any], *names: str) -> Any:
    for name in names:
        if entry.get(name) is not None:
            return entry[name]
    return None


def merge_inventory(config: AgentConfig, path: Path) -> AgentConfig:
    """Return ``config`` with the inventory's devices added (one tcp link per host:port)."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError([ConfigIssue(str(path), None, "", f"cannot read inventory: {exc}")]) from exc
    known = set(config.all_device_ids())
    links: dict[tuple[str, int], list[DeviceConfig]] = {}
    buses: dict[tuple[str, str, int], list[DeviceConfig]] = {}  # DL/T 645 / CJ/T 188 meters
    mqtt: list[MqttDeviceConfig] = []
    isapi: list[IsapiDeviceConfig] = []
    for index, entry in enumerate(_entries(doc)):
        device_id = _get(entry, "id", "device")
        profile = _get(entry, "profile", "profile_id")
        if not isinstance(device_id, str) or not isinstance(profile, str):
            raise ConfigError([ConfigIssue(str(path), None, f"devices[{index}]", "needs 'id' and 'profile'")])
        if device_id in known:
            continue
        transport = _get(entry, "transport")
        host, port = _get(entry, "host"), _get(entry, "port")
        if transport == "mqtt" or (host is None and _get(entry, "topic", "topics") is not None):
            topic = _get(entry, "topic")
            if topic is None and isinstance(entry.get("topics"), dict):
                topic = entry["topics"].get("state") or next(iter(entry["topics"].values()), None)
            elif topic is None and isinstance(entry.get("topics"), list) and entry["topics"]:
                topic = entry["topics"][0]
            mqtt.append(MqttDeviceConfig(id=device_id, profile=profile, topic=topic))
            continue
        if transport == "isapi":
            url = _get(entry, "url") or (f"http://{host}:{port}" if host is not None and port is not None else None)
            if not isinstance(url, str):
                raise ConfigError([ConfigIssue(str(path), None, f"devices[{index}]",
                                               "an ISAPI controller needs 'url' (or 'host' and 'port')")])
            isapi.append(IsapiDeviceConfig(id=device_id, profile=profile, url=url,
                                           username=str(_get(entry, "username") or "admin"),
                                           password=_get(entry, "password")))
            continue
        if host is None or port is None:
            raise ConfigError([ConfigIssue(str(path), None, f"devices[{index}]",
                                           "a Modbus device needs 'host' and 'port'")])
        if transport in ("dlt645", "cjt188"):
            buses.setdefault((transport, str(host), int(port)), []).append(
                DeviceConfig(id=device_id, profile=profile, address=str(_get(entry, "address"))))
            continue
        unit = int(_get(entry, "unit", "unit_id", "slave") or 1)
        links.setdefault((str(host), int(port)), []).append(DeviceConfig(id=device_id, profile=profile, unit=unit))
    existing = {link.key: link for link in config.links}
    new_links = list(config.links)
    for (host, port), devices in sorted(links.items()):
        key = f"tcp://{host}:{port}"
        if key in existing:
            link = existing[key]
            new_links[new_links.index(link)] = link.model_copy(update={"devices": [*link.devices, *devices]})
        else:
            new_links.append(TcpLinkConfig(type="tcp", host=host, port=port, devices=devices))
    for (protocol, host, port), meters in sorted(buses.items()):
        key = f"rtu-over-tcp://{host}:{port}"
        if key in existing:
            link = existing[key]
            new_links[new_links.index(link)] = link.model_copy(update={"devices": [*link.devices, *meters]})
        else:
            # a transparent converter in front of a meter bus: meters answer in hundreds of ms at
            # 2400 baud, so the deadline is longer than a Modbus link's
            new_links.append(LinkConfig(type="rtu-over-tcp", protocol=protocol, host=host, port=port,
                                        timeout_s=2.0, devices=meters))
    mqtt_cfg = config.mqtt_devices.model_copy(update={"devices": [*config.mqtt_devices.devices, *mqtt]})
    isapi_cfg = config.isapi.model_copy(update={"devices": [*config.isapi.devices, *isapi]})
    return config.model_copy(update={"links": new_links, "mqtt_devices": mqtt_cfg, "isapi": isapi_cfg})
