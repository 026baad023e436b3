"""ISAPI-style access controllers: hold each controller's HTTP alert stream open and map its events.

Per controller one task opens ``GET {url}{profile.isapi.path}`` with HTTP digest auth (httpx's
``DigestAuth``: the controller answers 401 with a nonce, the client repeats the request with the
digest) and reads the never-ending ``multipart/mixed`` answer through :class:`edge.alertstream.PartStream`.
Each JSON part is one event (or a heartbeat); the profile's ``isapi.events`` table says which points
an event sets, counts or pulses, so the controller's readings carry the same points as an MQTT gate
and the gate rules apply unchanged.

Failure handling, each costing only its own controller:

* the stream drops, the controller stops answering, or nothing arrives for ``idle_timeout_s``
  (3 × the profile's heartbeat by default): reconnect with :class:`guanjia.core.backoff.Backoff`,
  reset only after a part arrived (a controller that accepts and drops at once is not hammered);
* wrong credentials (401 after the digest round): logged once per outage and retried with the same
  backoff — a password changed on the controller must not stop the agent;
* a garbage part (not JSON, broken headers, a lying ``Content-Length``): counted, stored in the
  outbox ``rejects`` table, reported as ``payload_rejected`` at most once a minute; the parser
  resynchronises on the next boundary, so the next event is read normally;
* silence longer than 3 heartbeats: ``device_offline`` event and OFFLINE readings, as for MQTT
  devices; ``device_online`` with the next part.

Before each stream the adapter reads the controller's work status (the profile's ``isapi.status``:
door contact, tamper switch) once, because the stream reports changes only and ISAPI does not
replay an outage: without it a door closed while the stream was cut would stay "forced open" until
the next event. A controller without that endpoint is followed from events alone.

Time: readings are stamped with the agent's clock when the part arrives; the controller's own
``dateTime`` is kept as the ``device_clock`` point (epoch s) and a clock more than five minutes off
flags the reading ``clock_skew`` — the rule of :mod:`edge.mqtt_devices` and docs/edge.md. A gap in the
controller's ``serialNo`` (events it sent while the stream was down are not replayed by ISAPI) is
reported as an ``events_missed`` event with the count.

Commands (the profile's ``commands:``, a door's ``open``): ``PUT /ISAPI/AccessControl/RemoteControl/
door/{door}`` with ``<RemoteControlDoor><cmd>open</cmd></RemoteControlDoor>`` and digest auth, as
Hikvision's ISAPI documents it; the controller answers a ``ResponseStatus`` document whose
``statusCode`` 1 means done. Anything else (a 401 after the digest round, a 4xx/5xx, another
status code) is the controller's refusal, with its ``subStatusCode`` as the detail. The answer is
read with a regular expression rather than an XML parser: two fields of a short document from a
device on the plant-room LAN do not justify parsing untrusted XML (entities and all).

Memory: httpx is imported where a controller is followed or commanded, not with this module.
Importing httpx loads its command-line tool too (click, rich, pygments): 57.4 MB resident after
``import edge.agent`` with it, 50.7 MB without (measured 2026-12-06). Every agent loads this
module while most have no ISAPI controller; the edge bench's 1,000-device agent is held to 100 MB.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from device_profiles import Profile
from device_profiles.model import DeviceCommand, IsapiOptions, IsapiStatus, IsapiValue
from device_profiles.payload import json_path
from edge.alertstream import Garbage, Part, PartStream, boundary_of
from edge.config import IsapiDeviceConfig
from edge.errors import CommandRejected, IsapiAuthError, IsapiError, IsapiStreamError
from edge.mqtt_devices import DEVICE_CLOCK, MAX_SKEW_MS
from edge.outbox import Outbox, now_ms
from edge.polling import ReadingSink
from guanjia.core.backoff import Backoff
from guanjia.core.wire import Quality, Scalar

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

HEARTBEAT_TYPES = frozenset({"heartBeat", "heartbeat", "videoloss"})
"""Event types controllers send to keep the stream alive (the cameras' idiom is videoloss/inactive)."""
REMOTE_CONTROL = "/ISAPI/AccessControl/RemoteControl/door/{door}"
_STATUS_CODE = re.compile(rb"<statusCode>\s*(\d+)\s*</statusCode>")
_SUB_STATUS = re.compile(rb"<subStatusCode>\s*([A-Za-z0-9_]{1,64})\s*</subStatusCode>")


def remote_control_body(action: str) -> bytes:
    return (b'<?xml version="1.0" encoding="UTF-8"?><RemoteControlDoor version="2.0" '
            b'xmlns="http://www.isapi.org/ver20/XMLSchema"><cmd>' + action.encode() + b"</cmd></RemoteControlDoor>")


def device_time_ms(text: object) -> int | None:
    """ISAPI ``dateTime`` (ISO 8601 with offset) → epoch ms; None when absent or unreadable."""
    if not isinstance(text, str):
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None   # a local time without offset cannot be placed: keep the agent's time only
    return int(parsed.timestamp() * 1000)


def counter_points(options: IsapiOptions) -> set[str]:
    """The counter points a controller's events increment (passages in/out, per card reader)."""
    points: set[str] = set()
    for meaning in options.events.values():
        if isinstance(meaning.count, dict):
            points.update(meaning.count.values())
        elif meaning.count is not None:
            points.add(meaning.count)
    return points


def counter_key(device: str, point: str) -> str:
    """Where the outbox keeps a controller's count: the controller counts nothing itself (its events
    are the passages), so the agent's count must survive a restart or the cloud sees a reset."""
    return f"isapi:{device}:{point}"


@dataclass(slots=True)
class IsapiDevice:
    """One controller's state: its current point values, counters and stream statistics."""

    config: IsapiDeviceConfig
    profile: Profile
    options: IsapiOptions
    password: str = field(repr=False, default="")
    values: dict[str, Scalar] = field(default_factory=dict)
    pulsed: list[str] = field(default_factory=list)
    last_seen: float = 0.0
    online: bool | None = None
    connected: bool = False
    parts: int = 0
    events: int = 0
    unknown_events: int = 0
    rejects: int = 0
    connects: int = 0
    last_serial: int | None = None
    last_reject_event: float = -1e9
    status_syncs: int = 0
    status_warned: bool = False
    command_client: httpx.AsyncClient | None = field(default=None, repr=False)
    """kept between commands: its digest auth answers the next request without another 401 round"""

    @property
    def id(self) -> str:
        return self.config.id

    @property
    def url(self) -> str:
        return self.config.url + self.options.path

    @property
    def idle_timeout_s(self) -> float:
        return self.config.idle_timeout_s or 3 * self.options.heartbeat_s

    def code(self, point: str, value: IsapiValue) -> Scalar:
        """A profile value (an enum label, a bool, a number) as the point's decoded value."""
        if isinstance(value, str):
            code = self.profile.point(point).enum_code(value)
            return value if code is None else code
        return value


class IsapiListener:
    """All ISAPI controllers of the agent: one stream task each plus one staleness task."""

    def __init__(self, devices: list[tuple[IsapiDeviceConfig, Profile]], *, sink: ReadingSink, outbox: Outbox,
                 clock: Callable[[], int] = now_ms, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.sink = sink
        self.outbox = outbox
        self.clock = clock
        self.transport = transport
        self.devices: dict[str, IsapiDevice] = {}
        for cfg, profile in devices:
            if profile.isapi is None:
                continue
            device = IsapiDevice(cfg, profile, profile.isapi, password=cfg.secret())   # read once, at start
            for name, value in profile.isapi.rest.items():
                device.values[name] = device.code(name, value)
            if profile.isapi.heartbeat_point:
                device.values.setdefault(profile.isapi.heartbeat_point, 0)
            self.devices[cfg.id] = device

    @property
    def device_ids(self) -> set[str]:
        return set(self.devices)

    async def run(self) -> None:
        if not self.devices:
            return
        for device in self.devices.values():
            for point in counter_points(device.options):
                device.values[point] = self.outbox.counter(counter_key(device.id, point))
        try:
            await self._follow_all()
        finally:
            for device in self.devices.values():
                client, device.command_client = device.command_client, None
                if client is not None:
                    with contextlib.suppress(Exception):
                        await client.aclose()

    async def _follow_all(self) -> None:
        async with asyncio.TaskGroup() as tg:
            tg.create_task(self._staleness(), name="isapi-staleness")
            for device in self.devices.values():
                tg.create_task(self._follow(device), name=f"isapi-{device.id}")

    # ------------------------------------------------------------------ the stream
    async def _follow(self, device: IsapiDevice) -> None:
        import httpx  # here, not at the top: see the module docstring ("Memory")

        cfg = device.config
        backoff = Backoff(cfg.reconnect_initial_s, max(cfg.reconnect_initial_s, cfg.reconnect_max_s))
        device.last_seen = time.monotonic()
        failures = 0
        timeout = httpx.Timeout(cfg.connect_timeout_s, read=device.idle_timeout_s)
        async with httpx.AsyncClient(auth=httpx.DigestAuth(cfg.username, device.password), timeout=timeout,
                                     transport=self.transport) as client:
            while True:
                try:
                    await self._session(client, device, backoff)
                except IsapiError as exc:
                    failures = 0 if device.connected else failures + 1
                    if device.connected or failures == 1 or failures % 20 == 0:
                        log.warning("ISAPI controller %s: %s", device.id, exc)
                device.connected = False
                await asyncio.sleep(backoff.next_delay())

    async def _session(self, client: httpx.AsyncClient, device: IsapiDevice, backoff: Backoff) -> None:
        """One connection: raise :class:`IsapiError` however it ends (the stream never ends well)."""
        import httpx

        try:
            if device.options.status is not None:
                await self._sync_status(client, device, device.options.status)
            async with client.stream("GET", device.url) as response:
                if response.status_code == 401:
                    raise IsapiAuthError(f"{device.url}: credentials refused (401 after the digest round)")
                if response.status_code != 200:
                    raise IsapiStreamError(f"{device.url}: HTTP {response.status_code}")
                boundary = boundary_of(response.headers.get("content-type", ""))
                if boundary is None:
                    raise IsapiStreamError(f"{device.url}: not a multipart stream "
                                           f"({response.headers.get('content-type', 'no content type')})")
                device.connected = True
                device.connects += 1
                parser = PartStream(boundary)
                async for chunk in response.aiter_raw():
                    for item in parser.feed(chunk):
                        if isinstance(item, Part):
                            try:
                                if self.on_part(device, item):
                                    backoff.reset()
                            except (ValueError, TypeError, KeyError, OverflowError) as exc:
                                # a part shaped in a way nobody foresaw costs that part, not the agent
                                self._reject(device, f"part not understood: {type(exc).__name__}: {exc}", item.body)
                        else:
                            self._reject(device, item.reason, item.data)
                raise IsapiStreamError(f"{device.url}: the controller closed the stream")
        except httpx.HTTPError as exc:
            raise IsapiStreamError(f"{device.url}: {type(exc).__name__}: {exc}") from exc

    async def _sync_status(self, client: httpx.AsyncClient, device: IsapiDevice, status: IsapiStatus) -> None:
        """Read the controller's work status and put the points right (see :class:`IsapiStatus`).

        A controller without the endpoint (or with an unreadable answer) is followed from events
        alone: logged once, not an error — the stream still works."""
        response = await client.get(device.config.url + status.path)
        if response.status_code == 401:
            raise IsapiAuthError(f"{device.url}: credentials refused (401 after the digest round)")
        try:
            doc: Any = orjson.loads(response.content) if response.status_code == 200 else None
        except orjson.JSONDecodeError:
            doc = None
        if not isinstance(doc, dict):
            if not device.status_warned:
                device.status_warned = True
                log.info("ISAPI controller %s: no readable work status at %s (HTTP %d): following events only",
                         device.id, status.path, response.status_code)
            return
        for path, point in status.fields.items():
            raw = json_path(doc, path)
            if raw is None:
                continue
            table = status.codes.get(path)
            if table is not None:
                raw = next((v for code, v in table.items() if str(code) == str(raw)), None)
            if isinstance(raw, bool | int | str):
                device.values[point] = device.code(point, raw)
        door_rest = device.options.rest.get(status.door_point)
        if door_rest is not None and device.values.get(status.door_point) == device.code(status.door_point, door_rest):
            for point in status.latched:
                device.values[point] = device.code(point, device.options.rest.get(point, False))
        device.status_syncs += 1
        values = dict(device.values)
        self.sink.reading(device.id, self.clock(), values, dict.fromkeys(values, Quality.GOOD))

    # ------------------------------------------------------------------ parts → readings
    def on_part(self, device: IsapiDevice, part: Part) -> bool:
        """Apply one part; True when it was a usable JSON document (garbage is rejected, not raised)."""
        if part.content_type and "json" not in part.content_type:
            return False   # pictures and other attachments: not ours, not garbage either
        try:
            doc: Any = orjson.loads(part.body)
        except orjson.JSONDecodeError as exc:
            self._reject(device, f"part is not JSON: {exc}", part.body)
            return False
        if not isinstance(doc, dict):
            self._reject(device, "part is not a JSON object", part.body)
            return False
        received = self.clock()
        device.parts += 1
        device.last_seen = time.monotonic()
        if device.online is not True:
            if device.online is False:
                log.info("ISAPI controller %s is back", device.id)
            self.sink.event(device.id, "device_online", {"url": device.config.url})
            device.online = True
        options = device.options
        for name in device.pulsed:
            device.values[name] = device.code(name, options.rest.get(name, False))
        device.pulsed.clear()
        if options.heartbeat_point:
            device.values[options.heartbeat_point] = int(device.values.get(options.heartbeat_point) or 0) + 1
        if doc.get("eventType") not in HEARTBEAT_TYPES:
            self._apply_event(device, doc)
        values = dict(device.values)
        quality = Quality.GOOD
        ts = device_time_ms(doc.get("dateTime"))
        if ts is not None:
            values[DEVICE_CLOCK] = ts // 1000
            if abs(ts - received) > MAX_SKEW_MS:
                quality = Quality.CLOCK_SKEW
        self.sink.reading(device.id, received, values, dict.fromkeys(values, quality))
        return True

    def _apply_event(self, device: IsapiDevice, doc: dict[str, Any]) -> None:
        event = doc.get("AccessControllerEvent")
        if not isinstance(event, dict):
            device.unknown_events += 1
            return
        key = f"{event.get('majorEventType')}:{event.get('subEventType')}"
        meaning = device.options.events.get(key)
        self._check_serial(device, event.get("serialNo"))
        if meaning is None:
            device.unknown_events += 1
            return
        device.events += 1
        device.values[device.options.event_point] = device.code(device.options.event_point, meaning.event)
        for name, value in meaning.set.items():
            device.values[name] = device.code(name, value)
        device.pulsed.extend(meaning.pulse)
        counter = meaning.count
        if isinstance(counter, dict):
            reader = event.get("cardReaderNo", 1)
            counter = counter.get(reader) if isinstance(reader, int) else None
        if counter is not None:
            count = int(device.values.get(counter) or 0) + 1
            device.values[counter] = count
            self.outbox.set_counter(counter_key(device.id, counter), count)

    def _check_serial(self, device: IsapiDevice, serial: object) -> None:
        if not isinstance(serial, int) or isinstance(serial, bool):
            return
        last = device.last_serial
        device.last_serial = serial
        if last is not None and serial > last + 1:
            self.sink.event(device.id, "events_missed", {"count": serial - last - 1, "after_serial": last})

    def _reject(self, device: IsapiDevice, reason: str, data: bytes) -> None:
        device.rejects += 1
        self.outbox.add_reject("isapi", device.url, reason, data[:4096])
        now = time.monotonic()
        if now - device.last_reject_event >= 60:
            device.last_reject_event = now
            log.warning("ISAPI controller %s: part rejected (%s)", device.id, reason)
            self.sink.event(device.id, "payload_rejected", {"reason": reason[:200], "rejects": device.rejects})

    # ------------------------------------------------------------------ silence
    async def _staleness(self) -> None:
        """Silence for 3 heartbeats means the controller (or the way to it) is down: unlike an MQTT
        gate behind a shared broker, the agent holds this stream with the controller itself."""
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            for device in self.devices.values():
                silent = now - device.last_seen
                if device.online is not False and device.last_seen and silent > 3 * device.options.heartbeat_s:
                    device.online = False
                    log.warning("ISAPI controller %s silent for %.0fs: offline", device.id, silent)
                    self.sink.event(device.id, "device_offline", {"silent_s": round(silent, 1)})
                    names = device.profile.point_names
                    self.sink.reading(device.id, self.clock(), dict.fromkeys(names),
                                      dict.fromkeys(names, Quality.OFFLINE))

    # ------------------------------------------------------------------ commands
    def performers(self) -> dict[str, tuple[Profile, Callable[[DeviceCommand, str], Awaitable[None]]]]:
        """Device id → (profile, perform) for every controller whose profile has commands."""
        return {d.id: (d.profile, functools.partial(self.perform, d)) for d in self.devices.values()
                if d.profile.commands}

    async def perform(self, device: IsapiDevice, command: DeviceCommand, command_id: str) -> None:
        """``PUT`` the remote control to the controller (see the module docstring); raise
        :class:`CommandRejected` unless it answers ``statusCode`` 1."""
        import httpx

        url = device.config.url + REMOTE_CONTROL.format(door=command.door)
        if device.command_client is None:
            device.command_client = httpx.AsyncClient(
                auth=httpx.DigestAuth(device.config.username, device.password), transport=self.transport)
        try:
            response = await device.command_client.put(url, content=remote_control_body(command.word),
                                                       headers={"Content-Type": "application/xml"},
                                                       timeout=command.timeout_s)
        except httpx.TimeoutException:
            raise CommandRejected("device_timeout",
                                  f"{device.id} did not answer {command.name} within {command.timeout_s:g} s") from None
        except httpx.HTTPError as exc:
            raise CommandRejected("device_offline", f"{device.id}: {type(exc).__name__}: {exc}"[:200]) from exc
        code = _STATUS_CODE.search(response.content)
        if response.status_code == 200 and code is not None and code.group(1) == b"1":
            log.info("ISAPI controller %s: %s (door %d) done for command %s", device.id, command.name, command.door,
                     command_id)
            return
        sub = _SUB_STATUS.search(response.content)
        why = sub.group(1).decode() if sub else ("credentials refused" if response.status_code == 401
                                                  else f"HTTP {response.status_code}")
        raise CommandRejected("device_refused", f"{device.id}: {why}")

    def stats(self) -> dict[str, object]:
        return {"devices": len(self.devices), "connected": sum(d.connected for d in self.devices.values()),
                "online": sum(1 for d in self.devices.values() if d.online),
                "parts": sum(d.parts for d in self.devices.values()),
                "rejects": sum(d.rejects for d in self.devices.values()),
                "unknown_events": sum(d.unknown_events for d in self.devices.values())}


# ---------------------------------------------------------------------- commissioning
def describe_part(profile: Profile, item: Part | Garbage) -> dict[str, object]:
    """What the agent would make of one part: its raw form and its meaning under ``profile``."""
    if isinstance(item, Garbage):
        return {"garbage": item.reason, "bytes": len(item.data), "raw": item.data[:200].decode("latin-1")}
    record: dict[str, object] = {"headers": item.headers, "raw": item.body[:600].decode("utf-8", "replace")}
    if item.content_type and "json" not in item.content_type:
        record["meaning"] = "attachment (not JSON): ignored"
        return record
    try:
        doc = orjson.loads(item.body)
    except orjson.JSONDecodeError as exc:
        record["meaning"] = f"rejected: not JSON ({exc})"
        return record
    if not isinstance(doc, dict):
        record["meaning"] = "rejected: not a JSON object"
        return record
    record["device_time_ms"] = device_time_ms(doc.get("dateTime"))
    if doc.get("eventType") in HEARTBEAT_TYPES:
        record["meaning"] = "heartbeat"
        return record
    event = doc.get("AccessControllerEvent")
    if not isinstance(event, dict) or profile.isapi is None:
        record["meaning"] = f"event type {doc.get('eventType')!r}: not an access-controller event, counted as unknown"
        return record
    key = f"{event.get('majorEventType')}:{event.get('subEventType')}"
    meaning = profile.isapi.events.get(key)
    record["event"] = key
    if meaning is None:
        record["meaning"] = f"event {key} is not in {profile.id}'s isapi.events: counted as unknown"
    else:
        record["meaning"] = meaning.model_dump(exclude_defaults=True)
    return record


async def probe_stream(url: str, username: str, password: str, profile: Profile, *, parts: int = 5,
                       timeout_s: float = 30.0, transport: httpx.AsyncBaseTransport | None = None
                       ) -> list[dict[str, object]]:
    """Open a controller's alert stream once and describe its first ``parts`` parts (``guanjia edge
    isapi-probe``): the commissioning engineer sees the raw parts and which the profile maps."""
    import httpx

    records: list[dict[str, object]] = []
    try:
        async with asyncio.timeout(timeout_s), httpx.AsyncClient(
                auth=httpx.DigestAuth(username, password), timeout=httpx.Timeout(10.0, read=timeout_s),
                transport=transport) as client, client.stream("GET", url) as response:
            records.append({"status": response.status_code,
                            "content_type": response.headers.get("content-type", "")})
            boundary = boundary_of(response.headers.get("content-type", ""))
            if response.status_code != 200 or boundary is None:
                return records
            parser = PartStream(boundary)
            async for chunk in response.aiter_raw():
                for item in parser.feed(chunk):
                    records.append(describe_part(profile, item))
                    if len(records) > parts:
                        return records
    except TimeoutError:
        records.append({"timeout_s": timeout_s})
    except httpx.HTTPError as exc:
        raise IsapiStreamError(f"{url}: {type(exc).__name__}: {exc}") from exc
    return records
