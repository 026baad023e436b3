"""Commands from the cloud (``…/cmd``): validated writes to device points, acknowledged and audited.

A command is ``{"id": "c-1", "device": "b1-pump-1", "point": "pressure_setpoint", "value": 3.2}``
(optionally ``"type": "write"`` and ``"reply_to"``, echoed back); its shape and the reply are the
wire contract (:func:`guanjia.core.wire.parse_command`, :func:`~guanjia.core.wire.encode_reply`),
the checks against the device profile are this module's. The agent refuses anything the
device profile does not allow *before* touching the bus — unknown device or point, a point that is
not writable, a value outside the point's min/max or enum, a device that is offline, a command past
its ``expires`` (the cloud's deadline, checked against this box's clock) — and answers
on ``…/cmd/reply``::

    {"schema": 2, "kind": "cmd/reply", "gateway": "gw-1", "community": "demo", "id": "c-1",
     "ok": false, "reason": "out_of_range", "detail": "pressure_setpoint: 12 is above the maximum 10",
     "device": "b1-pump-1", "point": "pressure_setpoint", "value": 12, "ts": 1700000000000}

An ``action`` command (``"type": "action"``, ``"point": "open"``) asks an MQTT or ISAPI device to
perform a command of its profile (``commands:``, e.g. a gate's ``open``): the agent checks the
device and the command exist, then hands it to the device's adapter (:meth:`edge.mqtt_devices.
MqttDeviceListener.perform`, :meth:`edge.isapi.IsapiListener.perform`), which forwards it and waits
for the device's own answer within the command's ``timeout_s``. The reply says done only when the
device said so; ``device_refused`` or ``device_timeout`` otherwise.

Every outcome is audited twice: a row in the outbox's ``audit`` table (local trail, survives the
cloud being away) and a ``command`` event in the uplink stream (the cloud's trail).
Write function codes come from the point's table and size: FC05 one coil, FC06 one register,
FC15/FC16 several (or always FC16 when the profile says ``write_function: multiple``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from device_profiles import Profile
from device_profiles.codec import check_write
from device_profiles.errors import CodecError
from device_profiles.model import DeviceCommand
from edge.errors import CommandRejected, ModbusFault
from edge.modbus.poller import ModbusDevice
from edge.outbox import Outbox, now_ms
from guanjia.core.errors import WireError
from guanjia.core.wire import decode_command, encode_reply, parse_command

log = logging.getLogger(__name__)

Perform = Callable[[DeviceCommand, str], Awaitable[None]]
"""An adapter's way to have one device perform a command (the command, its id); raises
:class:`~edge.errors.CommandRejected` with the device's refusal or ``device_timeout``."""
ActionDevice = tuple[Profile, Perform]


class CommandHandler:
    def __init__(self, *, gateway: str, community: str, devices: Mapping[str, ModbusDevice], outbox: Outbox,
                 read_only_devices: Callable[[], set[str]] = set,
                 actions: Mapping[str, ActionDevice] | None = None) -> None:
        self.gateway = gateway
        self.actions = actions or {}
        self.community = community
        self.devices = devices
        self.outbox = outbox
        self.read_only_devices = read_only_devices
        self.accepted = 0
        self.refused = 0

    async def handle(self, payload: bytes) -> bytes:
        """Validate, apply, audit; return the reply payload (never raises)."""
        try:
            doc = decode_command(payload)
        except WireError as exc:
            self.refused += 1
            self.outbox.add_reject("cmd", "cmd", "command is not a JSON object", payload)
            self._audit({}, "refused", exc.reason, exc.detail)
            return self._reply({}, ok=False, reason=exc.reason, detail=exc.detail)
        try:
            await self._apply(doc)
        except CommandRejected as exc:
            self.refused += 1
            log.warning("command %s refused: %s", doc.get("id"), exc)
            self._audit(doc, "refused", exc.reason, exc.detail)
            return self._reply(doc, ok=False, reason=exc.reason, detail=exc.detail)
        self.accepted += 1
        log.info("command %s applied: %s.%s = %r", doc.get("id"), doc.get("device"), doc.get("point"),
                 doc.get("value"))
        self._audit(doc, "applied", "", "")
        return self._reply(doc, ok=True, reason=None, detail="")

    async def _apply(self, doc: dict[str, Any]) -> None:
        try:
            command = parse_command(doc)
        except WireError as exc:
            raise CommandRejected(exc.reason, exc.detail) from exc
        device_id, point_name, value = command.device, command.point, command.value
        if command.expires is not None and now_ms() > command.expires:
            # late is refused, never applied silently: the engineer who sent it has moved on
            raise CommandRejected("expired", f"command expired {(now_ms() - command.expires) / 1000:.0f} s ago")
        if command.type == "action":
            await self._act(command.id, device_id, point_name)
            return
        if value is None:
            raise CommandRejected("bad_value", "'value' is required for a write")
        device = self.devices.get(device_id)
        if device is None:
            if device_id in self.read_only_devices():
                raise CommandRejected("not_writable", f"{device_id} is read-only (an MQTT device or a meter)")
            raise CommandRejected("unknown_device", f"no device {device_id!r} on this gateway")
        try:
            point = device.profile.point(point_name)
        except KeyError:
            raise CommandRejected("unknown_point", f"{device.profile.id} has no point {point_name!r}") from None
        if not point.writable or point.table not in ("coil", "holding_register"):
            raise CommandRejected("not_writable", f"{point_name} is read-only")
        if isinstance(value, int | float) and not isinstance(value, bool):
            if point.min is not None and value < point.min:
                raise CommandRejected("out_of_range", f"{point_name}: {value} is below the minimum {point.min}")
            if point.max is not None and value > point.max:
                raise CommandRejected("out_of_range", f"{point_name}: {value} is above the maximum {point.max}")
        try:
            registers = check_write(point, value)
        except CodecError as exc:
            raise CommandRejected("bad_value", str(exc)) from exc
        if device.online is False:
            raise CommandRejected("device_offline", f"{device_id} is offline: {device.last_error}")
        opts = device.profile.modbus
        multiple = opts is not None and opts.write_function == "multiple"
        try:
            await device.link.write(point.table, point.address, registers, device.unit, multiple=multiple)
        except ModbusFault as exc:
            raise CommandRejected("device_error", str(exc)) from exc

    async def _act(self, command_id: str, device_id: str, name: str) -> None:
        target = self.actions.get(device_id)
        if target is None:
            if device_id in self.devices or device_id in self.read_only_devices():
                raise CommandRejected("unknown_command", f"{device_id} takes no commands (actions)")
            raise CommandRejected("unknown_device", f"no device {device_id!r} on this gateway")
        profile, perform = target
        command = profile.command(name)
        if command is None:
            known = ", ".join(c.name for c in profile.commands) or "none"
            raise CommandRejected("unknown_command", f"{profile.id} has no command {name!r} (it has: {known})")
        await perform(command, command_id)

    def _audit(self, doc: dict[str, Any], outcome: str, reason: str, detail: str) -> None:
        device = str(doc.get("device") or "")
        self.outbox.add_audit(str(doc.get("id") or ""), device, str(doc.get("point") or ""), doc.get("value"),
                              outcome, f"{reason}: {detail}" if reason else "")
        event_device = device if device in self.devices or device in self.read_only_devices() else self.gateway
        self.outbox.add_event({"device": event_device, "type": "command", "ts": now_ms(), "data": {
            "id": str(doc.get("id") or "")[:64], "device": device[:64], "point": str(doc.get("point") or "")[:64],
            "value": doc.get("value") if isinstance(doc.get("value"), int | float | str | bool) else None,
            "outcome": outcome, "reason": reason, "detail": detail[:200]}})

    def _reply(self, doc: dict[str, Any], *, ok: bool, reason: str | None, detail: str) -> bytes:
        return encode_reply(doc, gateway=self.gateway, community=self.community, ok=ok, reason=reason,
                            detail=detail, ts=now_ms())
