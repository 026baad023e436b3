"""``SimulatedFleet``: the whole simulated community as one async context manager.

::

    async with SimulatedFleet(generate_fleet(40), speed=60, labels_path=Path("labels.jsonl")) as fleet:
        fleet.inventory                       # what is served where (also written by --inventory)
        fid = fleet.inject("b1-lift-1", "passengers_trapped", duration_s=600)
        fleet.clear(fid)

One TaskGroup owns every task: the physics ticker (advances all models to the simulated clock at a
modest wall rate, not per request), the fault scheduler, the Modbus listeners (pymodbus runs its own
transport tasks, stopped in ``__aexit__``), the gate publisher and the optional HTTP control
endpoint. Leaving the block ends the active faults (label lines with ``ended_by: shutdown``),
stops every listener and closes the labels file.
"""

from __future__ import annotations

import asyncio
import fnmatch
import logging
import random
import time
import zlib
from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import numpy as np

from device_profiles import Profile
from guanjia.core.ports import free_port
from simulators.clock import DeviceClock, SimClock
from simulators.errors import SimulatorError
from simulators.faults import ActiveFault, LabelWriter, faults_for
from simulators.fleet import DeviceSpec, FleetSpec, Layout, check_fleet, converter_of
from simulators.isapi_server import IsapiController, IsapiServer
from simulators.meterbus import Meter, MeterBus, apply_fault, default_address, make_meter
from simulators.modbus_server import ModbusDevice, ModbusPort
from simulators.mqtt_devices import GatePublisher, MqttGate
from simulators.physics import DeviceModel, model_for
from simulators.physics.gate import GateModel
from simulators.scenario import Scenario

log = logging.getLogger(__name__)


@dataclass(slots=True)
class SimDeviceHandle:
    spec: DeviceSpec
    profile: Profile
    model: DeviceModel
    modbus: ModbusDevice | None = None
    gate: MqttGate | None = None
    meter: Meter | None = None
    isapi: IsapiServer | None = None
    host: str | None = None
    port: int | None = None
    broken: bool = False

    @property
    def kind(self) -> str:
        return self.profile.kind


class SimulatedFleet:
    """Serve a fleet of simulated devices until the ``async with`` block ends."""

    def __init__(self, spec: FleetSpec, *, layout: Layout | None = None, host: str | None = None,
                 base_port: int | None = None, speed: float = 1.0, seed: int = 0, start: float | None = None,
                 mqtt_url: str | None = None, labels_path: Path | None = None, control_port: int | None = None,
                 scenario: Scenario | None = None, tick_s: float = 0.5, device_clock: DeviceClock = "wall") -> None:
        self.profiles = check_fleet(spec)
        self.spec = spec
        self.layout: Layout = layout or spec.layout
        self.host = host or spec.host
        self.base_port = base_port
        self.clock = SimClock(speed=speed, start=start if start is not None else time.time(),
                              device_clock=device_clock)
        self.seed = seed
        self.mqtt_url = mqtt_url
        self.labels = LabelWriter(labels_path)
        self.control_port = control_port
        self.control_url: str | None = None
        self.scenario = scenario or Scenario()
        self.tick_s = tick_s
        self.devices: dict[str, SimDeviceHandle] = {}
        self.ports: list[ModbusPort] = []
        self.buses: list[MeterBus] = []
        self.publisher: GatePublisher | None = None
        self.active: dict[int, ActiveFault] = {}
        self._scheduled: list[tuple[float, str, str, float | None, dict[str, Any]]] = []
        self._stack = AsyncExitStack()
        self._tg: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._build()
        self._schedule_scenario()

    # ------------------------------------------------------------------ construction
    def _build(self) -> None:
        t0 = self.clock.now()
        next_unit: dict[str, int] = {}
        used: dict[str, set[int]] = {}
        for d in self.spec.devices:
            if d.unit is not None:
                used.setdefault(converter_of(d), set()).add(d.unit)
        for d in self.spec.devices:
            profile = self.profiles[d.id]
            unit = d.unit
            if profile.transport == "modbus" and unit is None:
                key = converter_of(d) if self.layout == "shared" else d.id
                taken = used.setdefault(key, set())
                unit = next_unit.get(key, 1)
                while unit in taken:
                    unit += 1
                if unit > 247:
                    raise SimulatorError(f"more than 247 Modbus devices behind converter {key!r}: "
                                         "split them with 'converter:' in the fleet file")
                taken.add(unit)
                next_unit[key] = unit + 1
            rng = np.random.default_rng([self.seed, zlib.crc32(d.id.encode())])
            model = model_for(d.id, profile, rng, t0, {"unit": unit or 1, **d.params})
            model.device_time = self.clock.device_now
            handle = SimDeviceHandle(d, profile, model)
            if profile.transport == "modbus":
                assert unit is not None
                handle.modbus = ModbusDevice(d.id, unit, profile, model, random.Random(self.seed ^ unit))
            elif profile.transport in ("dlt645", "cjt188"):
                bus_key = f"{converter_of(d)}/{profile.transport}"
                number = next_unit[bus_key] = next_unit.get(bus_key, 0) + 1
                handle.meter = make_meter(d.id, profile, model, d.address or default_address(profile.transport, number),
                                          self.clock.now)
            elif profile.mqtt is not None:
                handle.gate = MqttGate(d.id, profile, model, profile.mqtt.topic_for(self.spec.community, d.id),
                                       command_topic=profile.mqtt.command_topic_for(self.spec.community, d.id))
            elif profile.isapi is not None:
                assert isinstance(model, GateModel)
                controller = IsapiController(d.id, profile, model, username=str(d.params.get("username", "admin")),
                                             password=str(d.params.get("password", "Hik12345")),
                                             heartbeat_s=float(d.params.get("heartbeat_s", 10.0)))
                handle.isapi = IsapiServer(controller, self.host, d.port or 0, tick_s=min(self.tick_s, 0.5),
                                           seed=self.seed ^ zlib.crc32(d.id.encode()))
            self.devices[d.id] = handle

    def _schedule_scenario(self) -> None:
        for item in self.scenario.faults:
            matched = [d for d in self.devices if fnmatch.fnmatchcase(d, item.device)]
            if not matched:
                raise SimulatorError(f"scenario: no device matches {item.device!r}")
            for device in matched:
                self._check_fault(device, item.fault)
                self._scheduled.append((self.clock.start + item.at, device, item.fault, item.duration,
                                        dict(item.params)))
        self._scheduled.sort(key=lambda s: s[0])

    def _next_port(self) -> int:
        if self.base_port:
            return self.base_port + len(self.ports) + len(self.buses)
        return free_port(self.host)

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Self:
        try:
            await self._start()
        except BaseException:
            await self._stop()
            raise
        return self

    async def _start(self) -> None:
        self.clock.restart()   # simulated time starts when serving starts, not at construction
        groups: dict[str, list[ModbusDevice]] = {}
        fixed: dict[str, int] = {}
        for h in self.devices.values():
            if h.modbus is None:
                continue
            key = converter_of(h.spec) if self.layout == "shared" else h.spec.id
            groups.setdefault(key, []).append(h.modbus)
            if self.layout == "per-device" and h.spec.port:
                fixed[key] = h.spec.port
        for key, members in groups.items():
            port = ModbusPort(self.host, fixed.get(key) or self._next_port(), members, seed=self.seed)
            await port.start()
            self.ports.append(port)
            for m in members:
                handle = self.devices[m.device_id]
                handle.host, handle.port = self.host, port.port
        await self._start_buses()
        for h in self.devices.values():
            if h.isapi is not None:
                h.isapi.controller.due_events()   # the controller's own log starts now, stream or not
                await h.isapi.start()
                h.host, h.port = self.host, h.isapi.port
        gates = [h.gate for h in self.devices.values() if h.gate is not None]
        tg = await self._stack.enter_async_context(asyncio.TaskGroup())
        self._tg = tg
        if gates:
            if self.mqtt_url:
                client_id = f"guanjia-sim-{self.spec.community}-{random.Random().getrandbits(32):08x}"
                self.publisher = GatePublisher(self.mqtt_url, gates, client_id)
                self._tasks.append(tg.create_task(self.publisher.run(), name="sim-gates"))
            else:
                log.warning("%d MQTT devices (gates, lift boxes) are simulated but not published: no MQTT URL given",
                            len(gates))
        self._tasks.append(tg.create_task(self._ticker(), name="sim-physics"))
        if self.control_port is not None:
            from simulators.control import serve_control

            control_port = self.control_port or free_port(self.host)
            ready = asyncio.Event()
            self._tasks.append(tg.create_task(serve_control(self, self.host, control_port, ready),
                                              name="sim-control"))
            async with asyncio.timeout(15):
                await ready.wait()
            self.control_url = f"http://{self.host}:{control_port}"
        log.info("simulating %d devices (%d Modbus ports, %d meter buses, %d MQTT devices, %d ISAPI controllers)"
                 " at speed %g", len(self.devices), len(self.ports), len(self.buses), len(gates),
                 sum(1 for h in self.devices.values() if h.isapi is not None), self.clock.speed)

    async def _start_buses(self) -> None:
        """One meter bus (a transparent converter's TCP port) per converter and protocol."""
        buses: dict[str, list[SimDeviceHandle]] = {}
        for h in self.devices.values():
            if h.meter is not None:
                buses.setdefault(f"{converter_of(h.spec)}/{h.profile.transport}", []).append(h)
        for key, members in buses.items():
            meters = [h.meter for h in members if h.meter is not None]
            bus = MeterBus(meters[0].protocol, meters, host=self.host, port=self._next_port(),
                           rng=random.Random(zlib.crc32(key.encode()) ^ self.seed))
            await bus.start()
            self.buses.append(bus)
            for h in members:
                h.host, h.port = self.host, bus.port

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self._stop()

    async def _stop(self) -> None:
        if self.publisher is not None:
            self.publisher.stop()
            gates_task = next((t for t in self._tasks if t.get_name() == "sim-gates"), None)
            if gates_task is not None:
                await asyncio.wait([gates_task], timeout=5.0)
        for task in self._tasks:
            task.cancel()
        try:
            await self._stack.aclose()
        finally:
            self._tasks.clear()
            self._tg = None
            now = self.clock.now()
            for fault in list(self.active.values()):
                self._end(fault, now, "shutdown")
            for port in self.ports:
                await port.stop()
            self.ports.clear()
            for bus in self.buses:
                await bus.stop()
            self.buses.clear()
            for h in self.devices.values():
                if h.isapi is not None:
                    await h.isapi.stop()
            self.labels.close()

    # ------------------------------------------------------------------ physics and schedule
    def step_to(self, t: float) -> None:
        """Advance every model to simulated time ``t`` and run due scheduled fault changes."""
        while self._scheduled and self._scheduled[0][0] <= t:
            at, device, fault, duration, params = self._scheduled.pop(0)
            for h in self.devices.values():
                self._advance(h, at)
            self._begin(device, fault, duration, params, at)
        for due in [f for f in self.active.values() if f.end_sim is not None and f.end_sim <= t]:
            end = due.end_sim if due.end_sim is not None else t
            for h in self.devices.values():
                self._advance(h, end)
            self._end(due, end, "duration")
        for h in self.devices.values():
            self._advance(h, t)

    def _advance(self, handle: SimDeviceHandle, t: float) -> None:
        """Advance one model; a model that fails is isolated (its device answers exception 04)."""
        if handle.broken:
            return
        try:
            handle.model.advance_to(t)
        except Exception:
            log.exception("simulated device %s failed; it now answers 'server device failure'", handle.spec.id)
            handle.broken = True
            if handle.modbus is not None:
                handle.modbus.comm.exception_code = 4
                handle.modbus.comm.exception_probability = 1.0
            if handle.gate is not None:
                handle.gate.offline = True

    async def _ticker(self) -> None:
        while True:
            self.step_to(self.clock.now())
            await asyncio.sleep(self.tick_s)

    # ------------------------------------------------------------------ faults
    def _check_fault(self, device: str, fault: str) -> SimDeviceHandle:
        handle = self.devices.get(device)
        if handle is None:
            raise SimulatorError(f"unknown device {device!r}")
        allowed = faults_for(handle.kind, handle.profile.transport)
        if fault not in allowed:
            raise SimulatorError(f"{device} ({handle.kind}) cannot have fault {fault!r}; "
                                 f"possible: {', '.join(sorted(allowed))}")
        return handle

    def inject(self, device: str, fault: str, duration_s: float | None = None,
               params: Mapping[str, Any] | None = None) -> int:
        """Start ``fault`` on ``device`` now, for ``duration_s`` simulated seconds (None: until cleared).

        Returns the fault id (also in the label lines). Injecting a fault that is already active on
        the device ends the old one first.
        """
        now = self.clock.now()
        for h in self.devices.values():
            self._advance(h, now)
        return self._begin(device, fault, duration_s, dict(params or {}), now).id

    def _begin(self, device: str, fault: str, duration: float | None, params: dict[str, Any],
               at: float) -> ActiveFault:
        handle = self._check_fault(device, fault)
        for old in [f for f in self.active.values() if f.device == device and f.fault == fault]:
            self._end(old, at, "replaced")
        record = ActiveFault(device, fault, params, at, time.time(), None if duration is None else at + duration)
        self._apply(handle, fault, True, params)
        self.active[record.id] = record
        self.labels.started(record, handle.kind)
        return record

    def clear(self, fault_id: int) -> None:
        fault = self.active.get(fault_id)
        if fault is None:
            raise SimulatorError(f"no active fault with id {fault_id}")
        now = self.clock.now()
        for h in self.devices.values():
            self._advance(h, now)
        self._end(fault, now, "cleared")

    def _end(self, fault: ActiveFault, at: float, reason: str) -> None:
        self.active.pop(fault.id, None)
        handle = self.devices[fault.device]
        self._apply(handle, fault.fault, False, fault.params)
        self.labels.ended(fault, handle.kind, at, reason)

    def _apply(self, handle: SimDeviceHandle, fault: str, active: bool, params: Mapping[str, Any]) -> None:
        if handle.meter is not None and fault in ("offline", "garbage_frames", "bad_checksum", "wrong_address",
                                                  "no_data"):
            apply_fault(handle.meter, fault, active)
        elif fault == "offline":
            if handle.modbus is not None:
                handle.modbus.comm.offline = active
            if handle.gate is not None:
                handle.gate.offline = active
            if handle.isapi is not None:
                handle.isapi.controller.offline = active
                if active:
                    handle.isapi.controller.cut_all()
        elif fault == "stream_drop" and handle.isapi is not None:
            handle.isapi.controller.drop_every_s = float(params.get("every_s", 5.0)) if active else None
        elif fault == "garbage_frames" and handle.isapi is not None:
            handle.isapi.controller.garbage_probability = float(params.get("probability", 0.5)) if active else 0.0
        elif fault == "modbus_exception" and handle.modbus is not None:
            handle.modbus.comm.exception_code = int(params.get("code", 4)) if active else None
            handle.modbus.comm.exception_probability = float(params.get("probability", 1.0))
        elif fault == "garbage_frames" and handle.modbus is not None:
            handle.modbus.comm.garbage_probability = float(params.get("probability", 1.0)) if active else 0.0
        else:
            handle.model.set_fault(fault, active, params)

    # ------------------------------------------------------------------ views
    @property
    def modbus_requests(self) -> int:
        """Modbus requests served since start (all devices)."""
        return sum(h.modbus.requests for h in self.devices.values() if h.modbus is not None)

    @property
    def inventory(self) -> dict[str, Any]:
        """Device id, kind, profile, host, port, unit id and topics of every device served."""
        entries: list[dict[str, Any]] = []
        for h in self.devices.values():
            entry: dict[str, Any] = {"id": h.spec.id, "kind": h.kind, "profile": h.profile.id,
                                     "building": h.spec.building, "transport": h.profile.transport}
            if h.modbus is not None:
                entry |= {"host": h.host, "port": h.port, "unit": h.modbus.unit}
            if h.gate is not None:
                entry |= {"topic": h.gate.topic, "topics": [h.gate.topic]}
            if h.meter is not None:
                entry |= {"host": h.host, "port": h.port, "address": h.meter.address}
            if h.isapi is not None:
                c = h.isapi.controller
                # a simulated controller's login, so the agent can be pointed at the inventory
                entry |= {"host": h.host, "port": h.port, "url": f"http://{h.host}:{h.port}",
                          "username": c.username, "password": c.password}
            entries.append(entry)
        mqtt: dict[str, Any] | None = None
        if self.mqtt_url:
            from guanjia.core.settings import MqttUrl

            url = MqttUrl.parse(self.mqtt_url)
            mqtt = {"host": url.host, "port": url.port, "tls": url.tls}
        return {"community": self.spec.community, "layout": self.layout, "speed": self.clock.speed,
                "control_url": self.control_url, "mqtt": mqtt, "devices": entries}

    def values(self, device: str) -> dict[str, Any]:
        """What the device would report now (decoded engineering values)."""
        handle = self.devices.get(device)
        if handle is None:
            raise SimulatorError(f"unknown device {device!r}")
        if handle.modbus is not None:
            return handle.modbus.values_now()
        if handle.meter is not None:
            return handle.meter.values_now()
        return dict(handle.model.values())
