"""Modbus polling: a task per (device, poll group), phase-spread over the period.

Why per-device tasks: a device that times out, answers with exception codes or sends garbage only
costs its own task time; other devices' tasks keep their own schedule (on a shared link they wait
at most for one in-flight request, because the link lock is held per request). The schedule and
the online/offline state with backoff are every polled device's (:class:`edge.polling.PolledDevice`);
this module reads a group: its planned blocks, an undeclared hole split into single points, and a
unit that stops answering not asked the rest of its blocks.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass

from device_profiles import Profile
from edge.config import DeviceConfig
from edge.errors import ModbusFault
from edge.metrics import PollMetrics
from edge.modbus.blockcodec import BlockDecoder
from edge.modbus.link import ModbusLink
from edge.modbus.planner import Block, plan, split
from edge.polling import PolledDevice, ReadingSink, wall_ms
from guanjia.core.wire import Quality, Scalar

log = logging.getLogger(__name__)

_UNREACHABLE = frozenset({Quality.TIMEOUT, Quality.COMM_ERROR, Quality.DECODE_ERROR})
"""No usable answer from the unit: silence, a link that is down, or an answer the link could not
decode (garbage frames, a wrong register count). A unit answering only garbage is as good as silent:
it goes offline after ``offline_after`` polls and is then polled with backoff, so its garbage costs
the shared bus one request per backoff step instead of every block of every period (issue 24)."""


@dataclass(slots=True)
class GroupPlan:
    name: str
    period_s: float
    blocks: list[Block]


class ModbusDevice(PolledDevice[GroupPlan]):
    """One Modbus device on a link: its plan, schedule and online state."""

    def __init__(self, config: DeviceConfig, profile: Profile, link: ModbusLink, sink: ReadingSink,
                 metrics: PollMetrics, *, offline_after: int = 3, backoff_max_s: float = 60.0,
                 clock: Callable[[], int] = wall_ms, rng: random.Random | None = None) -> None:
        super().__init__(config.id, link, sink, metrics, offline_after=offline_after, backoff_max_s=backoff_max_s,
                         rng=rng)
        self.config = config
        self.profile = profile
        self.link = link
        self.unit = config.unit
        self.clock = clock
        self.timeout_s = config.timeout_s
        self.retries = config.retries
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

    def address_fields(self) -> dict[str, object]:
        return {"unit": self.unit}

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
            self._succeeded()
            self.sink.reading(self.id, ts, values, quality)
