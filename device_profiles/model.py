"""The typed model of a device profile: what a device exposes, and how its values are encoded.

A profile is written once per device *model* (an Eastron SDM630, a VFD pump set…) in YAML and is
shared by three parties that must never disagree: the edge agent decodes registers with it, the
simulators encode their physics with it, and the cloud labels metrics with it. Structural checks
live here (pydantic, ``extra="forbid"`` so a misspelt key is an error, not a silently ignored
field); cross-field checks that need the whole profile (overlaps, poll groups…) live in
:mod:`device_profiles.checks` so they can be reported with the line of the offending point.

Addresses: ``Point.address`` is ALWAYS the 0-based PDU address that goes on the wire. A profile
written from a manual that prints 1-based references sets ``modbus.address_base: 1`` and writes the
manual's numbers (without the 3xxxx/4xxxx table prefix); the loader subtracts one.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Table = Literal["coil", "discrete_input", "input_register", "holding_register"]
DType = Literal["bool", "int16", "uint16", "int32", "uint32", "float32", "float64", "bitfield", "enum", "string"]
Order = Literal["big", "little"]
Kind = Literal["meter", "pump", "elevator", "gate", "call_button"]
Transport = Literal["modbus", "mqtt", "isapi", "dlt645", "cjt188"]
SERIAL_METER_TRANSPORTS: frozenset[str] = frozenset({"dlt645", "cjt188"})
"""Transports read one data identifier per request from a meter address on an RS-485 bus."""
Group = Literal["status", "faults", "counters", "electrical", "hydraulic", "environment", "settings", "diagnostics"]
"""Display groups of the device page, in the order it shows them (see :data:`GROUPS`)."""
GROUPS: tuple[str, ...] = ("status", "faults", "electrical", "hydraulic", "environment", "counters", "settings",
                           "diagnostics")
"""Live state first (what is it doing, is anything wrong, the physics), then the cumulative
counters, then what is set and what only a specialist reads."""
CodeFormat = Literal["none", "dec", "hex"]

BIT_TABLES: frozenset[str] = frozenset({"coil", "discrete_input"})
READ_ONLY_TABLES: frozenset[str] = frozenset({"discrete_input", "input_register"})
REGISTER_WIDTH: dict[str, int] = {
    "bool": 1, "int16": 1, "uint16": 1, "bitfield": 1, "enum": 1,
    "int32": 2, "uint32": 2, "float32": 2, "float64": 4,
}
"""Registers per value for every fixed-width dtype (strings use ``Point.length``)."""

NAME_PATTERN = r"^[a-z][a-z0-9_]{0,62}$"
PROFILE_ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,62}$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Text(_Strict):
    """A text shown to people, in Chinese (the default language) and English; both are required so
    a page never falls back to a metric key in either language."""

    zh: str = Field(min_length=1, max_length=80)
    en: str = Field(min_length=1, max_length=80)

    def get(self, lang: str) -> str:
        return self.en if lang == "en" else self.zh


class Hole(_Strict):
    """A register range the device refuses to serve (exception 02): never read across it."""

    table: Table
    start: int = Field(ge=0, le=65535)
    end: int = Field(ge=0, le=65535, description="inclusive")

    @model_validator(mode="after")
    def _ordered(self) -> Hole:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self

    def overlaps(self, table: str, start: int, count: int) -> bool:
        return table == self.table and start <= self.end and start + count - 1 >= self.start


class ModbusOptions(_Strict):
    """How to talk to the device: request size limits, addressing base, default encodings."""

    max_registers_per_read: int = Field(125, ge=1, le=125)
    max_bits_per_read: int = Field(2000, ge=1, le=2000)
    address_base: Literal[0, 1] = 0
    byte_order: Order = "big"
    word_order: Order = "big"
    holes: list[Hole] = Field(default_factory=list)
    write_function: Literal["auto", "single", "multiple"] = Field(
        "auto", description="auto: FC06/05 for one register/coil, FC16/15 for more; multiple: always FC16/15 "
        "(Eastron accepts only FC16 for setup registers)")

    def hole_between(self, table: str, start: int, count: int) -> Hole | None:
        """The first hole a read of ``count`` registers from ``start`` would cross, if any."""
        return next((h for h in self.holes if h.overlaps(table, start, count)), None)


class MqttMapping(_Strict):
    """Topic and JSON payload layout of an MQTT device.

    ``fields`` maps a (dotted) JSON path in the payload to a point name, e.g.
    ``{"passages.in": "passages_in"}``. Enum points travel as their *names* ("open") and are turned
    into the enum code on decode, so the payload stays readable with ``mosquitto_sub``.

    Vendor boxes (lift IoT boxes) do not speak our labels: ``codes`` translates a field's vendor
    values (``"E30"``, ``3``) into the labels of the points it feeds (``passengers_trapped``), key
    ``"*"`` naming the label for codes the table does not know (without it such a message is
    rejected, naming the code). A field may feed several points (a list of names): a box's list of
    active faults becomes both the ``alarm_word`` bitfield and the ``fault_code`` enum. Why a table
    in the profile and not code per vendor: the box families differ only in their code lists and
    field names, which a field engineer can copy from a vendor's manual into YAML.
    """

    topic: str = Field(description="template with {community} and {device}, e.g. devices/{community}/{device}/state")
    format: Literal["json"] = "json"
    timestamp_field: str | None = "ts"
    timestamp_unit: Literal["ms", "s"] = "ms"
    heartbeat_s: float | None = Field(None, gt=0, description="the device publishes at least this often")
    qos: Literal[0, 1] = 1
    fields: dict[str, str | list[str]] = Field(min_length=1)
    codes: dict[str, dict[str | int, str]] = Field(
        default_factory=dict, description="JSON path -> {vendor code: our label}; '*' for unknown codes")
    command_topic: str | None = Field(
        None, description="template where the device takes commands (the profile's commands:), e.g. "
                          "devices/{community}/{device}/cmd; it answers on the same topic + /reply")

    def targets(self, path: str) -> list[str]:
        """The point names a JSON path feeds."""
        names = self.fields[path]
        return [names] if isinstance(names, str) else list(names)

    @property
    def mapped_points(self) -> set[str]:
        return {name for path in self.fields for name in self.targets(path)}

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if "{device}" not in value:
            raise ValueError("topic must contain {device}")
        if "#" in value or "+" in value:
            raise ValueError("topic is a publish topic: no wildcards")
        return value

    def topic_for(self, community: str, device: str) -> str:
        return self.topic.format(community=community, device=device)

    def command_topic_for(self, community: str, device: str) -> str | None:
        return None if self.command_topic is None else self.command_topic.format(community=community, device=device)


IsapiValue = bool | int | str


class IsapiEvent(_Strict):
    """What one access-controller event (major:minor type) means for the device's points."""

    event: str = Field(description="label of the profile's event point (last_event) for this event")
    set: dict[str, IsapiValue] = Field(default_factory=dict, description="point -> value (enum label) it sets")
    pulse: list[str] = Field(default_factory=list,
                             description="points of set: that fall back to false/0 with the next part")
    count: str | dict[int, str] | None = Field(
        None, description="counter point it increments, or {card reader number: counter point}")


class IsapiStatus(_Strict):
    """A status document the agent reads once per (re)connect, before the stream.

    Why: the alert stream reports changes only, and events sent while it was down are not replayed.
    A door forced during an outage, or closed while the stream was cut, would leave the points
    wrong until the next event; the controller's work status (door contact, tamper switch) puts
    them right, and ``latched`` flags (set by alarm events, cleared by the door-closed event) go back
    to rest when the status finds the door at rest.
    """

    path: str = "/ISAPI/AccessControl/AcsWorkStatus?format=json"
    fields: dict[str, str] = Field(min_length=1, description="dotted JSON path (numbers index lists) -> point")
    codes: dict[str, dict[str | int, IsapiValue]] = Field(
        default_factory=dict, description="JSON path -> {vendor value: our value or label}")
    door_point: str = "door_state"
    latched: list[str] = Field(default_factory=list, description="points reset to rest when the door is at rest")


class IsapiOptions(_Strict):
    """An ISAPI-style access controller: its alert stream and the meaning of its event types.

    ``events`` is keyed ``"major:minor"`` in decimal, as the vendor's SDK tables print them
    (Hikvision: major 5 = event, minor 75 = face verified). Unknown event types are counted and
    otherwise ignored: a controller has hundreds, and an unmapped one must not cost the mapped ones.
    """

    path: str = "/ISAPI/Event/notification/alertStream"
    heartbeat_s: float = Field(30.0, gt=0, description="the controller sends a heartbeat part at least this often")
    event_point: str = "last_event"
    heartbeat_point: str | None = Field("heartbeat", description="counter point advanced by every part")
    rest: dict[str, IsapiValue] = Field(default_factory=dict, description="point values before any event")
    status: IsapiStatus | None = None
    events: dict[str, IsapiEvent] = Field(min_length=1)

    @field_validator("events")
    @classmethod
    def _keys(cls, value: dict[str, IsapiEvent]) -> dict[str, IsapiEvent]:
        for key in value:
            major, _, minor = key.partition(":")
            if not (major.isdigit() and minor.isdigit()):
                raise ValueError(f"event key {key!r} must be 'major:minor' in decimal, e.g. '5:75'")
        return value


class DeviceCommand(_Strict):
    """A momentary action the device performs on command: open a gate, reset a fault latch.

    Why a section of its own and not a writable point: an action has no value to hold (a gate
    opened by command closes by itself; nothing reads "open" back from a register), the device
    answers it (done or refused) instead of the agent reading a value back, and the transports
    that carry it are not Modbus writes: an MQTT device takes ``{"id", "cmd"}`` on its
    ``mqtt.command_topic`` and answers on that topic + ``/reply``; an ISAPI controller takes
    ``PUT /ISAPI/AccessControl/RemoteControl/door/{door}`` with ``<cmd>{action}</cmd>``.
    """

    name: str = Field(pattern=NAME_PATTERN, description="what the API and rules call it, e.g. open")
    label: Text
    action: str | None = Field(None, min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_]+$",
                               description="the device's own word for it (MQTT cmd, ISAPI RemoteControl "
                                           "cmd: open, close, alwaysOpen…); the name when absent")
    door: int = Field(1, ge=1, le=64, description="ISAPI: the door number the controller opens")
    timeout_s: float = Field(5.0, gt=0, le=60, description="how long the agent waits for the device's answer")

    @property
    def word(self) -> str:
        return self.action or self.name


class Point(_Strict):
    """One metric of a device and how it is encoded."""

    name: str = Field(pattern=NAME_PATTERN, description="metric id, [a-z0-9_]")
    description: str | None = None
    table: Table | None = None
    address: int = Field(0, le=65535)
    dtype: DType = "uint16"
    length: int | None = Field(None, ge=1, le=123, description="registers of a string point")
    byte_order: Order = "big"
    word_order: Order = "big"
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    poll_group: str = "default"
    writable: bool = False
    min: float | None = None
    max: float | None = None
    enum: dict[int, str] | None = None
    bits: dict[int, str] | None = None
    deadband: float | None = Field(None, ge=0, description="report when the value moved at least this much")
    on_change: bool = False
    max_interval_s: float | None = Field(None, gt=0, description="report at least this often even if unchanged")
    di: str | None = Field(None, description="DL/T 645: data identifier, 8 hex digits DI3..DI0 (02010100)")
    bcd: str | None = Field(None, description="DL/T 645: value format of a vendor identifier (XXXXXX.XX)")
    signed: bool = Field(False, description="DL/T 645: a vendor identifier's value has a sign bit")
    field: str | None = Field(None, description="CJ/T 188: which field of the 901F reply (flow_total, valve…)")
    # --- display metadata (the device page and the API's device read model; the codec ignores it) ---
    label: Text | None = Field(None, description="what people call this value, zh and en")
    group: Group | None = Field(None, description="section of the device page")
    precision: int | None = Field(None, ge=0, le=6, description="decimals shown (numbers); 0 when omitted")
    value_labels: dict[int, Text] | None = Field(
        None, description="zh/en words of every enum code, or of a bool's 0/1 (default 否/是, no/yes)")
    bit_labels: dict[int, Text] | None = Field(None, description="zh/en words of every named bit of a bitfield")
    counter: bool = Field(False, description="a cumulative counter: shown with its increase per period")
    code_format: CodeFormat = Field("none", description="show an enum's code beside its word (fault codes)")

    @field_validator("address")
    @classmethod
    def _address(cls, value: int) -> int:
        if value < 0:
            raise ValueError("address is below the profile's address_base (a 1-based profile starts at 1)")
        return value

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: float) -> float:
        if value == 0:
            raise ValueError("scale must not be 0")
        return value

    @field_validator("enum", "bits")
    @classmethod
    def _labels(cls, value: dict[int, str] | None) -> dict[int, str] | None:
        if value is not None:
            for label in value.values():
                if not label or not label.replace("_", "").replace("-", "").isalnum():
                    raise ValueError(f"label {label!r} must be a non-empty word ([a-z0-9_-])")
        return value

    @property
    def register_count(self) -> int:
        """Registers (or bits, in coil/discrete tables) one read of this point needs."""
        if self.table in BIT_TABLES:
            return 1
        if self.dtype == "string":
            return self.length or 1
        return REGISTER_WIDTH[self.dtype]

    @property
    def is_bit(self) -> bool:
        return self.table in BIT_TABLES

    def enum_name(self, code: int) -> str | None:
        return None if self.enum is None else self.enum.get(code)

    def enum_code(self, name: str) -> int | None:
        if self.enum is None:
            return None
        return next((code for code, label in self.enum.items() if label == name), None)

    def flags(self, raw: int) -> dict[str, bool]:
        """A bitfield's raw value as ``{flag name: set?}`` for every named bit."""
        return {label: bool(raw >> bit & 1) for bit, label in (self.bits or {}).items()}


class Profile(_Strict):
    """A device model: identity, transport options and points."""

    id: str = Field(pattern=PROFILE_ID_PATTERN)
    kind: Kind
    transport: Transport
    description: str
    vendor: str | None = None
    source: str | None = Field(None, description="where the register map comes from")
    synthetic: bool = False
    modbus: ModbusOptions | None = None
    mqtt: MqttMapping | None = None
    isapi: IsapiOptions | None = None
    poll_groups: dict[str, float] = Field(default_factory=lambda: {"default": 1.0})
    points: list[Point] = Field(min_length=1)
    commands: list[DeviceCommand] = Field(default_factory=list,
                                          description="momentary actions (MQTT and ISAPI devices)")

    @model_validator(mode="before")
    @classmethod
    def _apply_base_and_defaults(cls, data: Any) -> Any:
        """Make ``Point.address`` 0-based and give points the profile's default byte/word order.

        Done before field validation on the raw mapping so that an address that is wrong for the
        declared base is reported at that point's own line.
        """
        if not isinstance(data, dict):
            return data
        modbus = data.get("modbus")
        points = data.get("points")
        if not isinstance(modbus, dict) or not isinstance(points, list):
            return data
        base = modbus.get("address_base", 0)
        defaults = {k: modbus[k] for k in ("byte_order", "word_order") if k in modbus}
        if base not in (0, 1) or (base == 0 and not defaults):
            return data
        new_points: list[Any] = []
        for raw in points:
            point = raw
            if isinstance(raw, dict):
                point = {**defaults, **raw}
                if base == 1 and isinstance(point.get("address"), int):
                    point["address"] -= 1
            new_points.append(point)
        holes = modbus.get("holes")
        if base == 1 and isinstance(holes, list):
            modbus = {**modbus, "holes": [
                {**h, **{k: h[k] - 1 for k in ("start", "end") if isinstance(h.get(k), int)}}
                if isinstance(h, dict) else h for h in holes]}
        return {**data, "modbus": modbus, "points": new_points}

    @field_validator("poll_groups")
    @classmethod
    def _periods(cls, value: dict[str, float]) -> dict[str, float]:
        for name, period in value.items():
            if period <= 0:
                raise ValueError(f"poll group {name!r}: period must be > 0 seconds")
        return value

    def point(self, name: str) -> Point:
        for p in self.points:
            if p.name == name:
                return p
        raise KeyError(name)

    def command(self, name: str) -> DeviceCommand | None:
        return next((c for c in self.commands if c.name == name), None)

    @property
    def point_names(self) -> list[str]:
        return [p.name for p in self.points]

    def points_in(self, group: str) -> list[Point]:
        return [p for p in self.points if p.poll_group == group]
