"""Serial meter buses: DL/T 645-2007 electricity meters and CJ/T 188 water meters behind a
transparent RS-485-to-Ethernet converter (a TCP port that passes bytes to and from the bus).

One :class:`MeterBus` is one RS-485 bus: several meters share it, each answers only frames for its
own address, and the bus carries one exchange at a time (a lock across every connection, as the
wire would). ``baudrate`` (0 = instant) makes each exchange take the time its bytes need on the
wire at 11 bits per byte (8E1), so a bench sees the real ceiling of a 2400-baud bus.

Faults, per meter (:class:`MeterFaults`, switched at run time by tests and the control API):
``silent`` (no answer: costs the master one timeout), ``garbage`` (random bytes instead of a
reply), ``bad_checksum`` (a reply with its checksum flipped), ``wrong_address`` (a reply from
another address, as a mis-addressed meter on the bus gives) and ``no_data`` (the abnormal reply
"no such data"). A broadcast "read address" answered by more than one meter collides, as it does
on a real bus: the master receives the overlapped bytes, which do not frame.

Values come from the device physics (:mod:`simulators.physics`) through the profile
(:mod:`device_profiles.meters`), advanced lazily to ``now()`` on each request.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import math
import os
import random
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from device_profiles import Point, Profile
from device_profiles.errors import CodecError
from device_profiles.meters import encode_point, metering_value, point_di
from device_profiles.protocols import cjt188, dlt645
from simulators.errors import SimulatorError
from simulators.physics import DeviceModel

log = logging.getLogger(__name__)

Protocol = Literal["dlt645", "cjt188"]
METER_FAULTS = frozenset({"silent", "garbage", "bad_checksum", "wrong_address", "no_data"})
TARIFF_SHARE = {"energy_import_t1": 0.10, "energy_import_t2": 0.35, "energy_import_t3": 0.30,
                "energy_import_t4": 0.25}
"""How the physics' forward energy splits over the four tariffs (尖峰平谷) the physics does not model."""


@dataclass(slots=True)
class MeterFaults:
    silent: bool = False
    garbage: bool = False
    bad_checksum: bool = False
    wrong_address: bool = False
    no_data: bool = False

    def set(self, fault: str, active: bool) -> None:
        if fault not in METER_FAULTS:
            raise SimulatorError(f"unknown meter fault {fault!r}; known: {', '.join(sorted(METER_FAULTS))}")
        setattr(self, fault, active)


def _other_address(address: str) -> str:
    last = (int(address[-1]) + 1) % 10
    return address[:-1] + str(last)


def _matches(pattern: str, address: str) -> bool:
    """A request address with ``AA`` wildcard pairs matches any digit pair in that place."""
    return all(p in ("AA", a) for p, a in zip(
        (pattern[i:i + 2] for i in range(0, len(pattern), 2)),
        (address[i:i + 2] for i in range(0, len(address), 2)), strict=True))


class Dlt645Meter:
    """One DL/T 645-2007 meter: answers read-data (0x11) for single items and data blocks
    (``DI1 = FF``) and read-address (0x13)."""

    protocol: Protocol = "dlt645"

    def __init__(self, device_id: str, address: str, profile: Profile, model: DeviceModel,
                 now: Callable[[], float] = time.time, *, serves_blocks: bool = True) -> None:
        if profile.transport != "dlt645":
            raise SimulatorError(f"{device_id}: profile {profile.id} is not a DL/T 645 profile")
        dlt645.encode_frame(dlt645.Frame(address, 0))  # validates the address (CodecError)
        self.device_id = device_id
        self.address = address
        self.profile = profile
        self.model = model
        self.now = now
        self.faults = MeterFaults()
        self.requests = 0
        self.serves_blocks = serves_blocks
        self.points: dict[int, Point] = {point_di(p): p for p in profile.points}

    def value_of(self, point: Point) -> float | None:
        self.model.advance_to(self.now())
        values = self.model.values()
        if point.name in TARIFF_SHARE and "energy_import" in values:
            base = values["energy_import"]
            return float(base) * TARIFF_SHARE[point.name] if isinstance(base, int | float) else None
        value = values.get(point.name)
        return float(value) if isinstance(value, int | float) else None

    def values_now(self) -> dict[str, float | int | bool | None]:
        """What the meter would answer now, per point (the values the master should decode)."""
        return {p.name: self.value_of(p) for p in self.profile.points}

    def reply(self, request: dlt645.Frame) -> dlt645.Frame | None:
        """The meter's answer to a frame addressed to it (None: it stays quiet)."""
        if request.function == dlt645.READ_ADDRESS:
            return dlt645.read_address_reply(self.address)
        if request.function != dlt645.READ_DATA or len(request.data) < 4:
            return dlt645.error_reply(self.address, request.function, 0x01)
        di = dlt645.request_di(request)
        packed = self._block(di) if dlt645.is_block(di) else self._item(di)
        if packed is None:
            return dlt645.error_reply(self.address, dlt645.READ_DATA, 0x02)
        return dlt645.data_reply(self.address, di, packed)

    def _item(self, di: int) -> bytes | None:
        point = self.points.get(di)
        value = None if point is None or self.faults.no_data else self.value_of(point)
        if point is None or value is None or not math.isfinite(value):
            return None
        return encode_point(point, value)

    def _block(self, di: int) -> bytes | None:
        """A data block: the items of the family from its first ``DI1`` up, as far as this meter
        has them (``serves_blocks`` False: a meter that only answers single items)."""
        if not self.serves_blocks:
            return None
        family = dlt645.family(di)
        out = b""
        index = dlt645.block_start(di)
        while (item := self._item(family | index << 8)) is not None:
            out += item
            index += 1
        return out or None


@dataclass(slots=True)
class WaterState:
    """A household-scale water meter's physics: flow follows the day (morning and evening peaks),
    the settlement-day reading is the total at the last month start, the valve and battery can be
    set (faults ``valve_closed``, ``battery_low``)."""

    total_m3: float = 100.0
    settlement_m3: float = 100.0
    valve: int = 0
    battery_low: bool = False
    t: float = field(default=0.0)
    peak_m3_per_h: float = 1.5

    def advance_to(self, t: float) -> None:
        if self.t == 0.0:
            self.t = t
            return
        while self.t < t:
            step = min(60.0, t - self.t)
            hour = (self.t / 3600.0 + 8) % 24  # Beijing time
            shape = 0.05 + math.exp(-((hour - 7.5) / 1.2) ** 2) + 0.8 * math.exp(-((hour - 20.0) / 1.8) ** 2)
            if self.valve == 0:
                self.total_m3 += self.peak_m3_per_h * shape * step / 3600.0
            self.t += step


class Cjt188Meter:
    """One CJ/T 188 water meter: answers read-data ``901F`` and read-address."""

    protocol: Protocol = "cjt188"

    def __init__(self, device_id: str, address: str, profile: Profile, *, meter_type: int = cjt188.COLD_WATER,
                 state: WaterState | None = None, now: Callable[[], float] = time.time) -> None:
        if profile.transport != "cjt188":
            raise SimulatorError(f"{device_id}: profile {profile.id} is not a CJ/T 188 profile")
        cjt188.encode_frame(cjt188.Frame(meter_type, address, 0, 0, 0))  # validates the address
        self.device_id = device_id
        self.address = address
        self.meter_type = meter_type
        self.profile = profile
        self.state = state or WaterState()
        self.now = now
        self.faults = MeterFaults()
        self.requests = 0

    def metering(self) -> cjt188.Metering:
        now = self.now()
        self.state.advance_to(now)
        clock = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(now + 8 * 3600))
        return cjt188.Metering(round(self.state.total_m3, 2), round(self.state.settlement_m3, 2), clock,
                               self.state.valve, self.state.battery_low)

    def values_now(self) -> dict[str, float | int | bool | None]:
        metering = self.metering()
        return {p.name: metering_value(p, metering) for p in self.profile.points}

    def reply(self, request: cjt188.Frame) -> cjt188.Frame | None:
        if request.control == cjt188.READ_ADDRESS:
            return cjt188.read_address_reply(self.meter_type, self.address, request.ser)
        if request.control != cjt188.READ_DATA or request.di != cjt188.METERING or self.faults.no_data:
            return cjt188.error_reply(self.meter_type, self.address, request.ser)
        return cjt188.metering_reply(self.meter_type, self.address, request.ser, self.metering())


Meter = Dlt645Meter | Cjt188Meter


class MeterBus:
    """A TCP port in front of one RS-485 bus of meters speaking one protocol."""

    def __init__(self, protocol: Protocol, meters: list[Meter], *, host: str = "127.0.0.1", port: int = 0,
                 baudrate: int = 0, rng: random.Random | None = None) -> None:
        if not meters:
            raise SimulatorError("a meter bus needs at least one meter")
        for meter in meters:
            if meter.protocol != protocol:
                raise SimulatorError(f"{meter.device_id} speaks {meter.protocol}, the bus {protocol}")
        addresses = [m.address for m in meters]
        if len(set(addresses)) != len(addresses):
            raise SimulatorError(f"two meters share an address on one bus: {sorted(addresses)}")
        self.protocol = protocol
        self.meters = meters
        self.host = host
        self.port = port
        self.baudrate = baudrate
        self.rng = rng or random.Random(0)
        self.lock = asyncio.Lock()
        self.exchanges = 0
        self.frames_in = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        self._ptys: list[tuple[int, int]] = []
        self._pty_tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("%s bus of %d meters on %s:%d", self.protocol, len(self.meters), self.host, self.port)

    async def open_pty(self) -> str:
        """Also serve the bus on a pseudo-terminal (raw mode) and return its path: a real serial
        device node the master opens with pyserial, as it would ``/dev/ttyUSB0``."""
        master, slave = os.openpty()
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._ptys.append((master, slave))
        self._pty_tasks.append(asyncio.get_running_loop().create_task(self._serve_pty(master), name="meterbus-pty"))
        return os.ttyname(slave)

    async def _serve_pty(self, master: int) -> None:
        loop = asyncio.get_running_loop()
        buffer = bytearray()
        split = dlt645.split_frame if self.protocol == "dlt645" else cjt188.split_frame
        while True:
            ready = loop.create_future()

            def wake(fut: asyncio.Future[None] = ready) -> None:
                if not fut.done():
                    fut.set_result(None)

            loop.add_reader(master, wake)
            try:
                await ready
            finally:
                loop.remove_reader(master)
            try:
                buffer += os.read(master, 512)
            except BlockingIOError:
                continue
            except OSError:
                return
            while True:
                raw, consumed = split(buffer)
                del buffer[:consumed]
                if raw is None:
                    break
                answer = await self._exchange(raw)
                if answer:
                    os.write(master, answer)

    async def stop(self) -> None:
        for task in self._pty_tasks:
            task.cancel()
        if self._pty_tasks:
            await asyncio.wait(self._pty_tasks, timeout=2.0)
        self._pty_tasks.clear()
        for master, slave in self._ptys:
            for fd in (master, slave):
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._ptys.clear()
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.close()
            if self._handlers:  # closed connections read EOF: let the handlers end on their own
                await asyncio.wait(list(self._handlers), timeout=2.0)
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> MeterBus:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    def meter(self, device_id: str) -> Meter:
        for meter in self.meters:
            if meter.device_id == device_id:
                return meter
        raise SimulatorError(f"no meter {device_id!r} on this bus")

    # ------------------------------------------------------------------ serving
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
            task.add_done_callback(self._handlers.discard)
        self._writers.add(writer)
        buffer = bytearray()
        split = dlt645.split_frame if self.protocol == "dlt645" else cjt188.split_frame
        try:
            while chunk := await reader.read(512):
                buffer += chunk
                while True:
                    raw, consumed = split(buffer)
                    del buffer[:consumed]
                    if raw is None:
                        break
                    answer = await self._exchange(raw)
                    if answer:
                        writer.write(answer)
                        await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _exchange(self, raw: bytes) -> bytes:
        async with self.lock:  # one exchange at a time on the wire
            self.frames_in += 1
            answer = self.answer(raw)
            if self.baudrate:
                await asyncio.sleep((len(raw) + 4 + len(answer)) * 11 / self.baudrate)
            self.exchanges += 1
            return answer

    def answer(self, raw: bytes) -> bytes:
        """What the bus carries back after the request ``raw`` (b"" when no meter answers)."""
        try:
            if self.protocol == "dlt645":
                request: dlt645.Frame | cjt188.Frame = dlt645.decode_frame(raw)
            else:
                request = cjt188.decode_frame(raw)
        except CodecError:
            return b""  # meters ignore a frame that does not check out
        if request.is_reply:
            return b""
        targets = [m for m in self.meters if _matches(request.address, m.address)]
        replies = [r for r in (self._reply(m, request) for m in targets) if r]
        if len(replies) > 1:
            # several meters talk at once: the bytes overlap on the wire
            size = max(len(r) for r in replies)
            mixed = bytearray(size)
            for r in replies:
                for i, b in enumerate(r):
                    mixed[i] |= b
            return bytes(mixed)
        return replies[0] if replies else b""

    def _reply(self, meter: Meter, request: dlt645.Frame | cjt188.Frame) -> bytes:
        faults = meter.faults
        meter.requests += 1
        if faults.silent:
            return b""
        if isinstance(meter, Dlt645Meter) and isinstance(request, dlt645.Frame):
            frame: dlt645.Frame | cjt188.Frame | None = meter.reply(request)
        elif isinstance(meter, Cjt188Meter) and isinstance(request, cjt188.Frame):
            frame = meter.reply(request)
        else:
            return b""
        if frame is None:
            return b""
        if faults.garbage:
            return bytes(self.rng.getrandbits(8) for _ in range(self.rng.randint(4, 30)))
        if faults.wrong_address:
            frame = dataclasses.replace(frame, address=_other_address(meter.address))
        raw = bytearray(dlt645.encode_frame(frame) if isinstance(frame, dlt645.Frame)
                        else cjt188.encode_frame(frame))
        if faults.bad_checksum:
            raw[-2] ^= 0x5A
        return bytes(raw)


# ---------------------------------------------------------------------------- fleet glue
FLEET_FAULTS: dict[str, str] = {"offline": "silent", "garbage_frames": "garbage", "bad_checksum": "bad_checksum",
                                "wrong_address": "wrong_address", "no_data": "no_data"}
"""The fleet's fault names (shared with the Modbus devices where they mean the same) → meter faults."""


def make_meter(device_id: str, profile: Profile, model: DeviceModel, address: str,
               now: Callable[[], float]) -> Meter:
    """The simulated meter of a fleet device whose profile speaks DL/T 645 or CJ/T 188."""
    if profile.transport == "dlt645":
        return Dlt645Meter(device_id, address, profile, model, now=now)
    return Cjt188Meter(device_id, address, profile, now=now)


def default_address(protocol: str, number: int) -> str:
    """Meters numbered per bus: 000000000001… (12 digits DL/T 645, 14 digits CJ/T 188)."""
    return f"{number:0{12 if protocol == 'dlt645' else 14}d}"


def apply_fault(meter: Meter, fault: str, active: bool) -> None:
    meter.faults.set(FLEET_FAULTS[fault], active)
