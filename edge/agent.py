"""The edge agent: acquisition → local rules → report-by-exception → durable outbox → uplink.

``async with Agent(config) as agent: await stop.wait()`` — the agent is an async context manager
owning one TaskGroup (pollers, MQTT device listener, rules ticker, uplink). Shutdown order matters
for "nothing lost": pollers stop first, rules state is snapshotted, the retained status is set to
``offline``, and the outbox's final group commit runs before its file is closed.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import gc
import hashlib
import logging
import os
import time
from collections.abc import Callable
from typing import Any

import orjson

from device_profiles import Profile, find_profile
from edge.commands import CommandHandler
from edge.config import AgentConfig
from edge.isapi import IsapiListener
from edge.managed import ConfigManager
from edge.metrics import PollMetrics
from edge.modbus.link import ModbusLink
from edge.modbus.poller import ModbusDevice
from edge.mqtt_devices import MqttDeviceListener
from edge.outbox import Outbox
from edge.polling import PolledDevice
from edge.rbe import ReportFilter
from edge.rules_runner import RuleRunner
from edge.serialbus.buses import MeterBuses
from edge.uplink import Uplink
from guanjia import __version__ as AGENT_VERSION
from guanjia.core.clock import Clock, SystemClock, to_ms
from guanjia.core.errors import ConfigError, ConfigIssue
from guanjia.core.wire import Quality, Scalar
from guanjia.core.wire_config import is_config_push
from rules import load_ruleset

log = logging.getLogger(__name__)


def rss_mb() -> float:
    """Resident memory of this process (Linux /proc; 0 elsewhere)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return round(pages * os.sysconf("SC_PAGE_SIZE") / 1e6, 1)
    except (OSError, ValueError, IndexError):
        return 0.0


async def _cancel(tasks: list[asyncio.Task[Any]], rounds: int = 40) -> None:
    """Cancel until done. On Python 3.11 a cancellation can be lost inside ``asyncio.wait_for`` when
    the awaited future completes at the same moment (pymodbus and paho calls do this at high
    request rates); the loops also check a stop flag, and cancelling again covers the rest."""
    for _ in range(rounds):
        pending = [t for t in tasks if not t.done()]
        if not pending:
            return
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=0.25)
    still = [t.get_name() for t in tasks if not t.done()]
    if still:
        log.error("tasks did not stop: %s", ", ".join(still[:10]))


class Agent:
    """``clock`` (:mod:`guanjia.core.clock`) is the agent's wall time: the one time every reading, event,
    alarm and rule duration of this agent is measured in (as epoch ms, :attr:`now_ms`). A device's
    own clock is never used for that (it is kept alongside as the ``device_clock`` point): a lift box
    or gate set ten minutes wrong, or one that jumps, must neither move readings into the future nor
    stall the rules' ``for:`` timers."""

    def __init__(self, config: AgentConfig, *, clock: Clock | None = None, base: AgentConfig | None = None,
                 managed_state: dict[str, Any] | None = None) -> None:
        """``config`` is what runs; ``base`` the agent file without any pushed version (default:
        ``config``), which each pushed version is applied to; ``managed_state`` the saved state of
        :mod:`edge.managed` (:func:`edge.managed.effective_config` returns both)."""
        self.clock: Clock = clock or SystemClock()
        wall = self.clock
        self.now_ms: Callable[[], int] = lambda: to_ms(wall.now())
        """Epoch ms of the injected clock, as every part of the agent takes it."""
        clock_ms = self.now_ms
        self.metrics = PollMetrics()
        self.started = time.monotonic()
        self._error_marks: collections.deque[tuple[float, int]] = collections.deque(maxlen=512)
        self.outbox = Outbox(
            config.outbox.path, gateway=config.gateway, max_bytes=config.outbox.max_bytes,
            flush_interval_s=config.outbox.flush_interval_s, batch_max_items=config.outbox.batch_max_items,
            max_pending=config.outbox.max_pending, synchronous=config.outbox.synchronous, clock=clock_ms)
        self._build(config)
        self.commands = CommandHandler(gateway=config.gateway, community=config.community, devices=self.devices,
                                       outbox=self.outbox,
                                       read_only_devices=lambda: (self.listener.device_ids | self.meter_buses.ids
                                                                  | self.isapi.device_ids))
        self.uplink = Uplink(config.uplink, gateway=config.gateway, community=config.community, outbox=self.outbox,
                             health=self.health, heartbeat_s=config.health.heartbeat_s,
                             on_command=self._on_command)
        self.managed = ConfigManager(base or config, managed_state or {}, self, now_ms=clock_ms,
                                     status_changed=self.uplink.status_changed)
        self._stack: contextlib.AsyncExitStack | None = None
        self._group: asyncio.TaskGroup | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._acquisition: list[asyncio.Task[Any]] = []

    def _build(self, config: AgentConfig) -> None:
        """Everything that depends on the device lists and rules: built at start and again by
        :meth:`reconfigure` (a pushed version). The outbox, the uplink and the command handler
        outlive it."""
        self.config = config
        self.profiles: dict[str, Profile] = {}
        self.kinds: dict[str, tuple[str, str]] = {}  # device -> (kind, profile id)
        self.filters: dict[str, ReportFilter] = {}
        self.links: dict[str, ModbusLink] = {}
        self.devices: dict[str, ModbusDevice] = {}
        self.answers: dict[str, list[int]] = {}
        """device → [readings, readings with at least one good value] since this build (probation)."""
        self.config_version = hashlib.sha256(config.model_dump_json().encode()).hexdigest()[:12]
        """What the cloud shows as the gateway's config version: a digest of the effective config,
        so two gateways (or one before and after a push) compare at a glance."""
        clock_ms = self.now_ms
        self.rules = RuleRunner(config.rules, self.outbox.add_alarm, clock_ms)
        self._build_modbus()
        self.meter_buses = MeterBuses(config.links, profile=self._profile, register=self._register, sink=self,
                                      metrics=self.metrics, clock=self.now_ms)
        mqtt_devices = [(d, self._profile(d.profile)) for d in config.mqtt_devices.devices if d.enabled]
        for cfg, profile in mqtt_devices:
            self._register(cfg.id, profile, report_by_exception=True)
        self.listener = MqttDeviceListener(
            mqtt_devices, community=config.community, uplink=config.uplink, url=config.mqtt_devices.url,
            gateway=config.gateway, sink=self, outbox=self.outbox, clock=clock_ms)
        isapi_devices = [(d, self._profile(d.profile)) for d in config.isapi.devices if d.enabled]
        for isapi_cfg, profile in isapi_devices:
            self._register(isapi_cfg.id, profile, report_by_exception=True)
        self.isapi = IsapiListener(isapi_devices, sink=self, outbox=self.outbox, clock=clock_ms)

    # ------------------------------------------------------------------ construction
    def _profile(self, ref: str) -> Profile:
        if ref not in self.profiles:
            self.profiles[ref] = find_profile(ref)
        return self.profiles[ref]

    def _register(self, device_id: str, profile: Profile, report_by_exception: bool) -> None:
        self.kinds[device_id] = (profile.kind, profile.id)
        self.filters[device_id] = ReportFilter(profile.points, enabled=report_by_exception)

    def _build_modbus(self) -> None:
        for link_cfg in self.config.links:
            enabled = [d for d in link_cfg.devices if d.enabled]
            if not enabled or link_cfg.protocol != "modbus":
                continue
            link = ModbusLink(link_cfg, self.metrics)
            self.links[link.key] = link
            for dev_cfg in enabled:
                profile = self._profile(dev_cfg.profile)
                self._register(dev_cfg.id, profile, dev_cfg.report_by_exception)
                self.devices[dev_cfg.id] = ModbusDevice(
                    dev_cfg, profile, link, self, self.metrics, offline_after=link_cfg.offline_after,
                    backoff_max_s=link_cfg.backoff_max_s, clock=self.now_ms)

    # ------------------------------------------------------------------ lifecycle
    async def __aenter__(self) -> Agent:
        self.rules.load(self.kinds)
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(self.outbox)
        self._stack = stack
        tg = asyncio.TaskGroup()
        await stack.enter_async_context(tg)
        self._group = tg
        self._tasks.append(tg.create_task(self.uplink.run(), name="uplink"))
        self._acquisition = self._start_acquisition(tg)
        # everything built so far lives as long as the agent: move it out of the cyclic GC's reach,
        # so full collections scan only new objects and do not stall the loop for tens of ms
        gc.collect()
        gc.freeze()
        self._log_up()
        return self

    def _log_up(self) -> None:
        log.info("edge agent %s/%s up: %d Modbus devices on %d links, %d meters on %d buses, %d MQTT devices, "
                 "%d ISAPI controllers",
                 self.config.community, self.config.gateway, len(self.devices), len(self.links),
                 len(self.meter_buses.meters), len(self.meter_buses.links), len(self.listener.devices),
                 len(self.isapi.devices))

    def _start_acquisition(self, tg: asyncio.TaskGroup) -> list[asyncio.Task[Any]]:
        tasks = [tg.create_task(self.listener.run(), name="mqtt-devices"),
                 tg.create_task(self.isapi.run(), name="isapi-devices"),
                 tg.create_task(self.rules.run(), name="rules")]
        # phase offsets: devices sharing a link are spread evenly over the period, so an RS-485 bus
        # sees a steady trickle of requests instead of a burst at every period boundary; links are
        # interleaved too, so no two devices of the agent start at the same instant (100 links × 10
        # units would otherwise wake 100 devices at once, ten times a period)
        links = list(self.links.values())
        for link_index, link in enumerate(links):
            on_link = [d for d in self.devices.values() if d.link is link]
            for index, device in enumerate(on_link):
                phase = (index + link_index / len(links)) / len(on_link)
                tasks.append(tg.create_task(device.run(phase), name=f"device-{device.id}"))
        tasks += self.meter_buses.start(tg, len(links), len(links) + len(self.meter_buses.links))
        return tasks

    async def _stop_acquisition(self) -> None:
        """Pollers, buses, listeners and rules stop; their readings are already in the outbox."""
        for device in self.devices.values():
            device.stopped = True
        self.meter_buses.stop()
        await _cancel(self._acquisition)
        self._acquisition = []
        self.rules.snapshot()
        for link in self.links.values():
            await link.close()
        await self.meter_buses.close()

    async def reconfigure(self, config: AgentConfig) -> None:
        """Swap the device lists and rules for ``config`` in-process (a pushed version, or the
        last good one coming back). What is checked before anything stops: every profile (by
        building the new acquisition's objects aside) and the rules (loaded aside); so a refusal
        leaves the running version untouched. The outbox and the uplink session are not touched:
        readings queued before the swap leave in order, and the cloud keeps its connection."""
        if self._group is None:
            raise ConfigError([ConfigIssue("<agent>", None, "", "the agent is not running")])
        load_ruleset(config.rules.paths, builtin=config.rules.builtin)  # raises ConfigError before any swap
        for ref in {d.profile for link in config.links for d in link.devices}:
            self._profile(ref)
        previous = self.config
        await self._stop_acquisition()
        try:
            self._build(config)
            self.rules.load(self.kinds)
        except Exception:
            # what the checks above could not see (a meter bus, a listener): the old version runs on
            self._build(previous)
            self.rules.load(self.kinds)
            raise
        finally:
            self.commands.devices = self.devices
            self._acquisition = self._start_acquisition(self._group)
            self._log_up()

    def device_states(self) -> dict[str, str]:
        """Every device the agent follows, by id (what a pushed version's probation watches).

        Polled devices (Modbus units and serial-bus meters): ``online``, ``offline``, ``failing``
        (it answers, but never with a good value since the last build: two full rounds of its poll
        groups, so one group whose points are all bad — a register the device lacks — does not
        count) or ``unknown`` (not polled yet). Devices that report by themselves (MQTT devices,
        ISAPI controllers): ``online``, ``offline`` (silent past their staleness limit) or ``unknown``.
        """
        states: dict[str, str] = {}
        polled: list[PolledDevice[Any]] = [*self.devices.values(), *self.meter_buses.meters.values()]
        for device in polled:
            readings, good = self.answers.get(device.id, [0, 0])
            if device.online is False:
                states[device.id] = "offline"
            elif good == 0 and readings >= 2 * max(1, len(device.groups)):
                states[device.id] = "failing"
            else:
                states[device.id] = "online" if device.online else "unknown"
        pushed: list[tuple[str, bool | None]] = [
            *((d.id, d.online) for d in self.listener.devices.values()),
            *((device_id, c.online) for device_id, c in self.isapi.devices.items())]
        for device_id, online in pushed:
            states[device_id] = "unknown" if online is None else ("online" if online else "offline")
        return states

    def rule_errors(self) -> int:
        return self.rules.errors

    async def _on_command(self, payload: bytes) -> bytes | None:
        """``cmd``: a config push goes to :mod:`edge.managed` (answered in ``status``), the rest
        (writes) to the command handler (answered on ``cmd/reply``)."""
        try:
            doc = orjson.loads(payload)
        except orjson.JSONDecodeError:
            doc = None
        if isinstance(doc, dict) and is_config_push(doc):
            await self.managed.on_push(doc)
            return None
        return await self.commands.handle(payload)

    async def __aexit__(self, *exc: object) -> None:
        stack, self._stack = self._stack, None
        if stack is None:
            return
        try:
            await self.managed.close()
            await self._stop_acquisition()
            await self.outbox.flush()
            await self.uplink.drain()
            await self.uplink.say_offline()
            await _cancel(self._tasks)
        finally:
            self._tasks.clear()
            await stack.__aexit__(None, None, None)
            log.info("edge agent stopped; outbox holds %d messages", self.outbox.depth())

    # ------------------------------------------------------------------ ReadingSink
    def reading(self, device: str, ts_ms: int, values: dict[str, Scalar], quality: dict[str, Quality]) -> None:
        kind, profile = self.kinds[device]
        answers = self.answers.get(device)
        if answers is None:
            answers = self.answers[device] = [0, 0]
        answers[0] += 1
        if len(quality) < len(values) or any(q is Quality.GOOD for q in quality.values()):
            answers[1] += 1
        self.rules.process(device, kind, profile, ts_ms, values, quality)
        rbe = self.filters[device]
        flags: dict[str, str] = {}
        if rbe.passthrough:
            sent = values
            for name, q in quality.items():
                if q is not Quality.GOOD:
                    flags[name] = q.wire
        else:
            sent = {}
            for name, value in values.items():
                q = quality.get(name, Quality.GOOD)
                if rbe.should_send(name, value, q, ts_ms):
                    sent[name] = value
                    if q is not Quality.GOOD:
                        flags[name] = q.wire
                else:
                    self.metrics.suppressed += 1
        if not sent:
            return
        item: dict[str, Any] = {"device": device, "ts": ts_ms, "values": sent}
        if not flags:
            item["quality"] = "good"
        else:
            distinct = set(flags.values())
            item["quality"] = distinct.pop() if len(flags) == len(sent) and len(distinct) == 1 else "uncertain"
            item["q"] = flags
        self.metrics.readings += 1
        self.outbox.add_reading(item)

    def event(self, device: str, type_: str, data: dict[str, object]) -> None:
        self.outbox.add_event({"device": device, "type": type_, "ts": self.now_ms(), "data": data})

    # ------------------------------------------------------------------ health
    def _errors_last_hour(self) -> int:
        """Request, poll and publish errors of the last hour (the counters are totals since start;
        each health report keeps a mark, and the answer is the total now minus the oldest mark
        within the hour). A process younger than an hour reports its errors since start."""
        total = self.metrics.request_errors + self.metrics.poll_errors + self.uplink.publish_errors
        now = time.monotonic()
        marks = self._error_marks
        while marks and now - marks[0][0] > 3600:
            marks.popleft()
        base = marks[0][1] if marks and now - self.started >= 3600 else 0
        if not marks or now - marks[-1][0] >= 30:
            marks.append((now, total))
        return max(0, total - base)

    def health(self) -> dict[str, Any]:
        online = sum(1 for d in self.devices.values() if d.online)
        offline = sum(1 for d in self.devices.values() if d.online is False)
        listener = self.listener.stats()
        return {
            "agent_version": AGENT_VERSION,
            "config_version": self.config_version,
            "errors_1h": self._errors_last_hour(),
            "uptime_s": round(time.monotonic() - self.started, 1),
            "devices": len(self.devices) + len(self.meter_buses.meters) + len(self.listener.devices)
                       + len(self.isapi.devices),
            "devices_online": online + self.meter_buses.online + self.listener.online_count
                              + sum(1 for d in self.isapi.devices.values() if d.online),
            "devices_offline": offline + self.meter_buses.offline,
            "links": len(self.links),
            "links_connected": sum(1 for link in self.links.values() if link.connected),
            "meter_buses": self.meter_buses.stats(),
            "poll": self.metrics.summary(),
            "outbox": self.outbox.stats(),
            "uplink": self.uplink.stats(),
            "mqtt_devices": listener,
            "isapi_devices": self.isapi.stats(),
            "rules": self.rules.stats(),
            "commands": {"accepted": self.commands.accepted, "refused": self.commands.refused},
            "config": self.managed.report(),
            "rss_mb": rss_mb(),
        }
