"""Agent configurations for end-to-end tests: one TCP link to a local Modbus server with test
pumps, or MQTT devices only; a fast uplink reconnect and a fast outbox flush."""

from __future__ import annotations

from pathlib import Path

from edge.config import (
    AgentConfig,
    DeviceConfig,
    MqttDeviceConfig,
    MqttDevicesConfig,
    OutboxConfig,
    RulesConfig,
    TcpLinkConfig,
    UplinkConfig,
)
from tests.support.edge.profiles import write_profile


def agent_config(tmp_path: Path, url: str, community: str, gateway: str, port: int, period_s: float = 0.2,
                 devices: int = 1) -> AgentConfig:
    profile = write_profile(tmp_path, period_s)
    return AgentConfig(
        gateway=gateway, community=community,
        uplink=UplinkConfig(url=url, reconnect_initial_s=0.1, reconnect_max_s=1.0, publish_timeout_s=5),
        outbox=OutboxConfig(path=tmp_path / "outbox.db", flush_interval_s=0.1, synchronous="normal"),
        links=[TcpLinkConfig(type="tcp", host="127.0.0.1", port=port, timeout_s=0.5, devices=[
            DeviceConfig(id=f"pump-{i}", profile=str(profile), unit=i + 1, report_by_exception=False)
            for i in range(devices)])],
        rules=RulesConfig(builtin=False, state_path=tmp_path / "rules.json"),
    )


def mqtt_agent_config(tmp_path: Path, url: str, community: str, gateway: str, devices: dict[str, str], *,
                      builtin_rules: bool = False) -> AgentConfig:
    """An agent of MQTT devices only (``devices``: id → profile) on the uplink's broker."""
    return AgentConfig(
        gateway=gateway, community=community, uplink=UplinkConfig(url=url, reconnect_initial_s=0.1),
        outbox=OutboxConfig(path=tmp_path / "o.db", flush_interval_s=0.05, synchronous="normal"),
        mqtt_devices=MqttDevicesConfig(devices=[MqttDeviceConfig(id=d, profile=p) for d, p in devices.items()]),
        rules=RulesConfig(builtin=builtin_rules, state_path=tmp_path / "r.json"),
    )
