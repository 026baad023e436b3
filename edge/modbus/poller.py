"""Per-device polling: a task per (device, poll group), phase-spread over the period.

Why per-device tasks: a device that times out, answers with exception codes or sends garbage only
costs its own task time; other devices' tasks keep their own schedule (on a shared link they wait
at most for one in-flight request, because the link lock is held per request). A device that stops
answering goes *offline* after ``offline_after`` failed polls in a row and is then retried with
capped jittered backoff instead of every period, so a dead unit does not keep occupying its bus.

The schedule is absolute (``due += period``), so lateness does not accumulate; each start's
lateness is recorded in a histogram, and a poll that runs past its next due time counts as an
overrun (logged, rate-limited) and skips the missed cycles instead of bursting to catch up.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from device_profiles import Profile
from edge.config import DeviceConfig
from edge.errors import ModbusFault
from edge.metrics import PollMetrics
from edge.modbus.blockcodec import BlockDecoder
from edge.modbus.link import ModbusLink
from edge.modbus.planner import Block, plan, split
from guanjia.core.backoff import Backoff
from guanjia.core.wire import Quality, Scalar

log = logging.getLogger(__name__)

_UNREACHABLE = frozenset({Quality.TIMEOUT, Quality.COMM_ERROR, Quality.DECODE_ERROR})
"""No usable answer from the unit: silence, a link that is down, or an answer the link could not
decode (garbage frames, a wrong register count). A unit answering only garbage is as good as silent:
it goes offline after ``offline_after`` polls and is then polled with backoff, so its garbage costs
the shared bus one request per backoff step instead of every block of every period (issue 24)."""
_RNG = random.Random()


class ReadingSink(Protocol):
    """Where pollers deliver: the agent (rules, report-by-exception, outbox)."""

    def reading(self, device: str, ts_ms: int, values: dict[str, Scalar], quality: dict[str, Quality]) -> None: ...

    def event(self, device: str, type_: str, data: dict[str, object]) -> None: ...


@dataclass(slots=True)
class GroupPlan:
    name: str
    period_s: float
    blocks: list[Block]


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class ModbusDevice:
    """One Modbus device on a link: its plan, schedule and online state."""

    def __init__(self, config: DeviceConfig, profile: Profile, link: ModbusLink, sink: ReadingSink,
                 metrics: PollMetrics, *, offline_after: int = 3, backoff_max_s: float = 60.0,
                 clock: Callable[[], int] = wall_ms, rng: random.Random | None = None) -> None:
        self.id = config.id
        self.config = config
        self.profile = profile
        self.link = link
        self.sink = sink
        self.metrics = metrics
        self.unit = config.unit
        self.offline_after = offline_after
        self.clock = clock
        self.timeout_s = config.timeout_s
        self.retries = config.retries
        self.online: bool | None = None  # unknown until the first poll
        self.failures = 0
        # one Random per agent, not per device: a Mersenne Twister state is 2.5 kB
        self.backoff = Backoff(initial=1.0, cap=max(1.0, backoff_max_s), rng=rng or _RNG)
        self.retry_at = 0.0
        self.last_error = ""
        self.stopped = False
        self._decoders: dict[tuple[str, int, int], BlockDecoder] = {}
        self.groups = self._plan()

    def _plan(self) -> list[GroupPlan]:
        opts = self.profile.modbus
        groups: list[GroupPlan] = []
        names = sorted({p.poll_group for p in self.profile.points if p.table is not None})
        for name in names:
            period = (self.config.period_s or self.config.poll_groups.get(name)
                      or self.profile.poll_groups.get(name) or 1.0)
            points = [p for p in self.profile.points if p.poll_group == name and p.table is not None]
            blocks = plan(points,
                          max_registers=opts.max_registers_per_read if opts else 125,
                          max_bits=opts.max_bits_per_read if opts else 2000,
                          holes=opts.holes if opts else ())
            groups.append(GroupPlan(name, period, blocks))
        return groups

    @property
    def request_count(self) -> int:
        return sum(len(g.blocks) for g in self.groups)

    # ------------------------------------------------------------------ scheduling
    async def run(self, phase: float) -> None:
        """Poll every group forever; ``phase`` ∈ [0, 1) spreads devices across each period."""
        async with asyncio.TaskGroup() as tg:
            for group in self.groups:
                tg.create_task(self._loop(group, phase), name=f"poll-{self.id}-{group.name}")

    async def _loop(self, group: GroupPlan, phase: float) -> None:
        period = group.period_s
        due = time.monotonic() + phase * period
        last_warn = 0.0
        # the flag, not only cancellation, ends the loop: on Python 3.11 a cancellation arriving as a
        # response completes can be lost inside ``asyncio.wait_for`` (pymodbus' execute), and a lost
        # cancellation would hang the agent's shutdown
        while not self.stopped:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            started = time.monotonic()
            if self.online is False and started < self.retry_at:
                # offline: wait for the backoff, keeping the phase of the schedule
                due += max(1, math.ceil((self.retry_at - due) / period)) * period
                continue
            # timers may fire a hair early (clock resolution): lateness is never negative
            self.metrics.lateness.observe(max(0.0, (started - due) * 1000))
            await self.poll(group)
            due += period
            now = time.monotonic()
            if now > due:
                missed = math.ceil((now - due) / period)
                due += missed * period
                self.metrics.overruns += 1
                if now - last_warn > 60:
                    last_warn = now
                    log.warning("%s: poll group %s took %.0f ms, longer than its %.0f ms period (skipped %d)",
                                self.id, group.name, (now - started) * 1000, period * 1000, missed)

    # ------------------------------------------------------------------ one poll
    async def poll(self, group: GroupPlan) -> None:
        ts = self.clock()
        values: dict[str, Scalar] = {}
        quality: dict[str, Quality] = {}
        unreachable = 0
        index = 0
        blocks = group.blocks
        while index < len(blocks):
            block = blocks[index]
            try:
                registers = await self.link.read(block.table, block.start, block.count, self.unit,
                                                 self.timeout_s, self.retries)
            except ModbusFault as fault:
                if fault.quality is Quality.ILLEGAL_ADDRESS and len(block.points) > 1:
                    # an undeclared hole: read its points one by one from now on
                    log.warning("%s: unit %d refuses %s %d..%d; reading its %d points separately",
                                self.id, self.unit, block.table, block.start, block.end - 1, len(block.points))
                    blocks[index:index + 1] = split(block)
                    continue
                self.last_error = str(fault)
                if fault.quality in _UNREACHABLE:
                    unreachable += 1
                for point, _ in block.points:
                    values[point.name] = None
                    quality[point.name] = fault.quality
                index += 1
                if fault.quality in _UNREACHABLE:
                    # the device (or its link) is not answering: do not spend every other block's
                    # timeout on it too — that time belongs to its neighbours on the bus
                    for rest in blocks[index:]:
                        for point, _ in rest.points:
                            values[point.name] = None
                            quality[point.name] = fault.quality
                    unreachable += len(blocks) - index
                    break
                continue
            key = (block.table, block.start, block.count)
            decoder = self._decoders.get(key)
            if decoder is None:
                decoder = self._decoders[key] = BlockDecoder(block.points, block.count)
            decoder.decode_into(registers, values, quality)
            index += 1
        self.metrics.polls += 1
        if unreachable == len(blocks) and blocks:
            self._failed(ts, values, quality)
        else:
            if unreachable:
                self.metrics.poll_errors += 1
            self._succeeded(ts)
            self.sink.reading(self.id, ts, values, quality)

    def _failed(self, ts: int, values: dict[str, Scalar], quality: dict[str, Quality]) -> None:
        self.metrics.poll_errors += 1
        self.failures += 1
        if self.online is not False and self.failures >= self.offline_after:
            self.online = False
            log.warning("%s (unit %d on %s) is offline: %s", self.id, self.unit, self.link.key, self.last_error)
            self.sink.event(self.id, "device_offline", {"reason": self.last_error, "link": self.link.key,
                                                        "unit": self.unit, "failures": self.failures})
            self.sink.reading(self.id, ts, dict.fromkeys(values), dict.fromkeys(quality, Quality.OFFLINE))
        elif self.online is not False:
            self.sink.reading(self.id, ts, values, quality)
        if self.online is False:
            self.retry_at = time.monotonic() + self.backoff.next_delay()

    def _succeeded(self, ts: int) -> None:
        if self.online is False:
            log.info("%s (unit %d on %s) is back online after %d failed polls",
                     self.id, self.unit, self.link.key, self.failures)
            self.sink.event(self.id, "device_online", {"after_failures": self.failures, "link": self.link.key})
        elif self.online is None:
            self.sink.event(self.id, "device_online", {"link": self.link.key, "unit": self.unit})
        self.online = True
        self.failures = 0
        self.backoff.reset()
        self.retry_at = 0.0


