"""The agent's YAML config (``guanjia edge run --config agent.yaml``), validated with file:line errors.

The file is written by the engineer commissioning a plant room, so every field has a default that
is safe on a small box, unknown fields are refused (a typo must not silently fall back to a
default), and relative paths are resolved against the config file's folder, not the current
directory the service happens to be started from.

Shape (see ``edge/examples/agent.yaml`` and ``docs/edge.md``)::

    gateway: gw-1
    community: demo
    uplink: {url: mqtt://user:pw@host:1883, tls: {ca_file: ...}, keepalive_s: 30, ...}
    outbox: {path: outbox.db, max_bytes: 512MB, ...}
    links:
      - {type: tcp, host: 10.0.0.5, port: 502, devices: [{id: b1-meter-1, profile: eastron-sdm630, unit: 1}]}
      - {type: rtu, serial_port: /dev/ttyUSB0, baudrate: 9600, parity: E, devices: [...]}
      - {type: rtu-over-tcp, protocol: dlt645, host: 10.0.0.6, port: 8899, baudrate: 2400, parity: E,
         devices: [{id: b1-submeter-1, profile: dlt645-3phase, address: "000000000001"}]}
    mqtt_devices: {devices: [{id: b1-gate-1, profile: access-gate}]}
    isapi: {devices: [{id: b1-door-1, profile: hikvision-isapi-acs, url: http://10.0.3.21, username: admin,
                       password_file: door.secret}]}
    rules: {paths: [rules.d/], builtin: true}
    health: {heartbeat_s: 30}
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from guanjia.core.config import load_model
from guanjia.core.errors import ConfigError, ConfigIssue
from guanjia.core.wire import valid_id

_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "kib": 1024, "m": 1e6, "mb": 1e6, "mib": 1024**2,
          "g": 1e9, "gb": 1e9, "gib": 1024**3, "t": 1e12, "tb": 1e12, "tib": 1024**4}


def parse_size(value: Any) -> int:
    """``512MB`` / ``1GiB`` / ``1000000`` → bytes (people write sizes with units)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    match = _SIZE_RE.match(str(value))
    if not match or (match.group(2) or "").lower() not in _UNITS:
        raise ValueError(f"not a size: {value!r} (write e.g. 512MB, 2GiB or a number of bytes)")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_id(value: str) -> str:
    if not valid_id(value):
        raise ValueError("must be 1-64 characters of letters, digits, '_', '.', ':' or '-' (no '/', '+', '#')")
    return value


class TlsConfig(_Model):
    """TLS to the broker. With ``ca_file`` the broker certificate is verified against that CA."""

    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure: bool = Field(False, description="skip hostname verification (never in production)")


class UplinkConfig(_Model):
    url: str = Field(..., description="mqtt://user:password@host:port or mqtts://…")
    username: str | None = None
    password: str | None = None
    password_file: Path | None = None
    tls: TlsConfig | None = None
    keepalive_s: int = Field(30, ge=5, le=3600)
    connect_timeout_s: float = Field(10.0, gt=0, le=120)
    publish_timeout_s: float = Field(15.0, gt=0, le=300)
    max_inflight: int = Field(16, ge=1, le=1000, description="QoS 1 batches awaiting PUBACK at once")
    catchup_share: float = Field(
        0.75, gt=0, le=1, description="fraction of in-flight slots the backlog may use; live data keeps the rest"
    )
    catchup_items_per_s: float = Field(0.0, ge=0, description="optional cap on backlog drain (0 = no cap)")
    reconnect_initial_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    end_to_end_ack: bool = Field(
        True, description="keep each batch until the cloud confirms it stored (false: delete on the broker's PUBACK)")
    confirm_timeout_s: float = Field(
        30.0, gt=0, le=3600, description="resend a PUBACKed batch the cloud has not confirmed after this long")
    confirm_timeout_max_s: float = Field(600.0, gt=0, description="cap of the doubling confirmation timeout")
    behind_hold_max_s: float = Field(
        600.0, ge=0, le=86_400,
        description="while the cloud's ingest says it is behind, hold a batch's resends for at most this long "
                    "after its first send (0 = ignore the status)")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("mqtt://", "mqtts://", "tcp://", "ssl://")):
            raise ValueError("must start with mqtt:// or mqtts://")
        return value


class OutboxConfig(_Model):
    path: Path = Path("outbox.db")
    max_bytes: int = Field(512 * 1024 * 1024,
                           description="payload bytes kept on disk before oldest telemetry is dropped")
    flush_interval_s: float = Field(0.25, gt=0, le=10, description="group-commit period for readings")
    batch_max_items: int = Field(1000, ge=1, le=20_000, description="readings per telemetry message")
    max_pending: int = Field(200_000, ge=100, description="readings held in memory between commits")
    synchronous: Literal["normal", "full"] = Field(
        "full", description="full: fsync each group commit (survives power loss); normal: survives process crash"
    )

    @field_validator("max_bytes", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        size = parse_size(value)
        if size < 1024 * 1024:
            raise ValueError("must be at least 1MB")
        return size


class DeviceConfig(_Model):
    id: str
    profile: str = Field(..., description="a built-in profile id or a path to a profile YAML file")
    unit: int = Field(1, ge=0, le=255, description="Modbus unit id (slave address)")
    address: str | None = Field(None, description="DL/T 645 (12 digits) or CJ/T 188 (14 digits) meter address")
    enabled: bool = True
    period_s: float | None = Field(None, gt=0, description="override the period of every poll group")
    poll_groups: dict[str, float] = Field(default_factory=dict, description="override periods per poll group")
    timeout_s: float | None = Field(None, gt=0, le=60)
    retries: int | None = Field(None, ge=0, le=5)
    report_by_exception: bool = Field(True, description="apply the profile's deadband/on_change/max_interval")
    labels: dict[str, str] = Field(default_factory=dict)

    _id = field_validator("id")(_check_id)

    @field_validator("poll_groups")
    @classmethod
    def _periods(cls, value: dict[str, float]) -> dict[str, float]:
        for name, period in value.items():
            if period <= 0:
                raise ValueError(f"period of poll group {name!r} must be > 0 seconds")
        return value


class LinkConfig(_Model):
    """One physical link: ``tcp`` (Modbus TCP device or gateway), ``rtu-over-tcp`` (a transparent
    RS-485 converter) or ``rtu`` (a serial port on the box). One model rather than a tagged union so
    a mistake is reported at its own line (``links.0.port``)."""

    type: Literal["tcp", "rtu-over-tcp", "rtu"]
    protocol: Literal["modbus", "dlt645", "cjt188"] = Field(
        "modbus", description="what the bus speaks: DL/T 645 and CJ/T 188 meters run over rtu or rtu-over-tcp")
    host: str | None = Field(None, description="tcp / rtu-over-tcp")
    port: int = Field(502, ge=1, le=65535)
    serial_port: str | None = Field(None, description="rtu: e.g. /dev/ttyUSB0")
    baudrate: int = Field(9600, ge=300, le=921_600)
    parity: Literal["N", "E", "O"] = "N"
    bytesize: Literal[7, 8] = 8
    stopbits: Literal[1, 2] = 1
    timeout_s: float = Field(1.0, gt=0, le=60, description="deadline of one request")
    retries: int = Field(1, ge=0, le=5, description="immediate retries of a timed-out request")
    offline_after: int = Field(3, ge=1, le=100, description="failed polls in a row before a device is offline")
    backoff_max_s: float = Field(60.0, gt=0, description="cap of the retry backoff of an offline device")
    devices: list[DeviceConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def _endpoint(self) -> LinkConfig:
        if self.type == "rtu" and not self.serial_port:
            raise ValueError("an rtu link needs serial_port (e.g. /dev/ttyUSB0)")
        if self.type != "rtu" and not self.host:
            raise ValueError(f"a {self.type} link needs host")
        if self.protocol != "modbus":
            if self.type == "tcp":
                raise ValueError(f"a {self.protocol} bus is reached over rtu (a serial port) or rtu-over-tcp "
                                 "(a transparent converter), not Modbus tcp")
            self._meter_addresses()
        return self

    def _meter_addresses(self) -> None:
        """Each meter's address, reported at that device's own line (``links.0.devices.1.address``)."""
        digits = 12 if self.protocol == "dlt645" else 14
        errors: list[InitErrorDetails] = []
        seen: dict[str, int] = {}
        for index, device in enumerate(self.devices):
            address = device.address
            if address is None or len(address) != digits or not address.isdigit():
                message = (f"a {self.protocol} meter needs its {digits}-digit address as printed on the "
                           f"nameplate (got {address!r})")
            elif address in seen:
                message = f"address {address} is already devices.{seen[address]}'s on this bus"
            else:
                seen[address] = index
                continue
            errors.append(InitErrorDetails(type=PydanticCustomError("meter_address", message),
                                           loc=("devices", index, "address"), input=address))
        if errors:
            raise ValidationError.from_exception_data(type(self).__name__, errors)

    @property
    def key(self) -> str:
        if self.type == "rtu":
            return f"rtu://{self.serial_port}"
        return f"{self.type}://{self.host}:{self.port}"


TcpLinkConfig = LinkConfig
"""Kept as a name for readability at call sites that build TCP links in code."""


class MqttDeviceConfig(_Model):
    id: str
    profile: str
    topic: str | None = Field(None, description="override the profile's topic template")
    enabled: bool = True
    stale_after_s: float = Field(120.0, gt=0, description="no message for this long → offline event")
    labels: dict[str, str] = Field(default_factory=dict)

    _id = field_validator("id")(_check_id)


class MqttDevicesConfig(_Model):
    url: str | None = Field(None, description="broker of the MQTT devices; default: the uplink broker")
    devices: list[MqttDeviceConfig] = Field(default_factory=list)


class IsapiDeviceConfig(_Model):
    """An access controller with an ISAPI-style alert stream (see :mod:`edge.isapi`)."""

    id: str
    profile: str
    url: str = Field(..., description="http://host[:port] of the controller (the profile gives the path)")
    username: str = "admin"
    password: str | None = None
    password_file: Path | None = Field(None, description="file holding the password (kept out of the config)")
    enabled: bool = True
    connect_timeout_s: float = Field(10.0, gt=0, le=120)
    idle_timeout_s: float | None = Field(
        None, gt=0, description="no byte for this long → reconnect (default: 3 × the profile's heartbeat)")
    reconnect_initial_s: float = Field(1.0, gt=0)
    reconnect_max_s: float = Field(60.0, gt=0)
    labels: dict[str, str] = Field(default_factory=dict)

    _id = field_validator("id")(_check_id)

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    def secret(self) -> str:
        if self.password_file is not None:
            return self.password_file.read_text(encoding="utf-8").strip()
        return self.password or ""


class IsapiConfig(_Model):
    devices: list[IsapiDeviceConfig] = Field(default_factory=list)


class RulesConfig(_Model):
    builtin: bool = Field(True, description="load the default rule sets shipped in rules/library")
    paths: list[Path] = Field(default_factory=list, description="extra rule files or folders")
    reload: bool = Field(True, description="watch the rule files and reload them on change")
    state_path: Path = Path("rules-state.json")
    snapshot_interval_s: float = Field(30.0, gt=0)
    tick_s: float = Field(1.0, gt=0, le=60)


class HealthConfig(_Model):
    heartbeat_s: float = Field(30.0, ge=1, le=3600)


def unique_devices(links: list[LinkConfig], mqtt_devices: MqttDevicesConfig, isapi: IsapiConfig) -> None:
    """One link per endpoint, one device per id, across every kind of device (raises ValueError).
    Shared by the agent file and a pushed ``devices.yaml`` (:mod:`edge.bundle`)."""
    seen: set[str] = set()
    keys: set[str] = set()
    for index, link in enumerate(links):
        if link.key in keys:
            raise ValueError(f"links[{index}]: a second link to {link.key}; put its devices on one link")
        keys.add(link.key)
        for device in link.devices:
            if device.id in seen:
                raise ValueError(f"device id {device.id!r} appears twice")
            seen.add(device.id)
    for other in [*(d.id for d in mqtt_devices.devices), *(d.id for d in isapi.devices)]:
        if other in seen:
            raise ValueError(f"device id {other!r} appears twice")
        seen.add(other)


class ManagedConfig(_Model):
    """Configuration pushed by the cloud (:mod:`edge.managed`): where versions are kept on this box,
    and how long a new version is watched before it counts as good."""

    dir: Path = Field(Path("managed"), description="versions pushed by the cloud and the last good one")
    probation_s: float = Field(60.0, gt=0, le=3600,
                               description="after a push: devices that were online must stay online and "
                                           "rules must evaluate for this long, or the last good version returns")


class AgentConfig(_Model):
    gateway: str
    community: str
    uplink: UplinkConfig
    outbox: OutboxConfig = OutboxConfig()
    links: list[LinkConfig] = Field(default_factory=list)
    mqtt_devices: MqttDevicesConfig = MqttDevicesConfig()
    isapi: IsapiConfig = IsapiConfig()
    rules: RulesConfig = RulesConfig()
    health: HealthConfig = HealthConfig()
    managed: ManagedConfig = ManagedConfig()
    inventory: Path | None = Field(None, description="a simulator inventory JSON to add devices from")

    _gateway = field_validator("gateway", "community")(_check_id)

    @model_validator(mode="after")
    def _unique(self) -> AgentConfig:
        unique_devices(self.links, self.mqtt_devices, self.isapi)
        return self

    def resolved(self, base: Path) -> AgentConfig:
        """Return a copy with relative paths resolved against ``base`` (the config file's folder)."""

        def fix(path: Path | None) -> Path | None:
            return None if path is None or path.is_absolute() else base / path

        outbox = self.outbox.model_copy(update={"path": fix(self.outbox.path) or self.outbox.path})
        rules = self.rules.model_copy(update={
            "paths": [fix(p) or p for p in self.rules.paths],
            "state_path": fix(self.rules.state_path) or self.rules.state_path,
        })
        uplink = self.uplink
        if uplink.password_file is not None:
            uplink = uplink.model_copy(update={"password_file": fix(uplink.password_file) or uplink.password_file})
        if uplink.tls is not None:
            tls = uplink.tls.model_copy(update={
                name: fix(getattr(uplink.tls, name)) or getattr(uplink.tls, name)
                for name in ("ca_file", "cert_file", "key_file")
            })
            uplink = uplink.model_copy(update={"tls": tls})
        links = [
            link.model_copy(update={"devices": [
                d.model_copy(update={"profile": profile_ref(d.profile, base)}) for d in link.devices
            ]})
            for link in self.links
        ]
        mqtt = self.mqtt_devices.model_copy(update={"devices": [
            d.model_copy(update={"profile": profile_ref(d.profile, base)}) for d in self.mqtt_devices.devices
        ]})
        isapi = self.isapi.model_copy(update={"devices": [
            d.model_copy(update={"profile": profile_ref(d.profile, base),
                                 "password_file": fix(d.password_file) or d.password_file})
            for d in self.isapi.devices
        ]})
        managed = self.managed.model_copy(update={"dir": fix(self.managed.dir) or self.managed.dir})
        return self.model_copy(update={
            "outbox": outbox, "rules": rules, "uplink": uplink, "links": links, "mqtt_devices": mqtt, "isapi": isapi,
            "inventory": fix(self.inventory) or self.inventory, "managed": managed,
        })

    def all_device_ids(self) -> list[str]:
        ids = [d.id for link in self.links for d in link.devices]
        return ids + [d.id for d in self.mqtt_devices.devices] + [d.id for d in self.isapi.devices]


def profile_ref(ref: str, base: Path) -> str:
    """A profile given as a relative file path is resolved like every other path; ids stay ids."""
    if ref.endswith((".yaml", ".yml")) and not Path(ref).is_absolute():
        return str(base / ref)
    return ref


def load_config(path: str | Path) -> AgentConfig:
    """Load and validate the agent config; errors are ``file:line: field: message``."""
    p = Path(path)
    config = load_model(AgentConfig, p)
    resolved = config.resolved(p.absolute().parent)
    if resolved.uplink.password_file is not None and not resolved.uplink.password_file.exists():
        raise ConfigError([ConfigIssue(str(p), None, "uplink.password_file",
                                       f"file {resolved.uplink.password_file} does not exist")])
    for index, device in enumerate(resolved.isapi.devices):
        if device.password_file is not None and not device.password_file.exists():
            raise ConfigError([ConfigIssue(str(p), None, f"isapi.devices.{index}.password_file",
                                           f"file {device.password_file} does not exist")])
    return resolved
