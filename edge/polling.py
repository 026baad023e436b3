"""What every polled device shares, whatever its bus: the schedule and the online state.

A Modbus unit (:mod:`edge.modbus.poller`) and a DL/T 645 / CJ/T 188 meter
(:mod:`edge.serialbus.poller`) differ only in how one poll is read. Both run a task per
(device, poll group) on an absolute schedule, and both go *offline* after ``offline_after``
unreachable polls in a row and are then retried on capped jittered backoff, so a dead device
does not keep occupying its bus. That part lives here once; a subclass says how to poll a group
(:meth:`PolledDevice.poll`) and how it is addressed on its bus (:meth:`PolledDevice.address_fields`).

Schedule: ``due += period``, so lateness does not accumulate; each start's lateness is recorded
in a histogram, and a poll that runs past its next due time counts as an overrun (logged,
rate-limited) and skips the missed cycles instead of bursting to catch up. An offline device
keeps the phase of its schedule while it waits for its backoff.
"""

from __future__ import annotations

import abc
import asyncio
import logging
import math
import random
import time
from typing import Generic, Protocol, TypeVar

from edge.metrics import PollMetrics
from guanjia.core.backoff import Backoff
from guanjia.core.wire import Quality, Scalar

log = logging.getLogger(__name__)

_RNG = random.Random()
"""One Random per agent, not per device: a Mersenne Twister state is 2.5 kB."""


class ReadingSink(Protocol):
    """Where pollers deliver: the agent (rules, report-by-exception, outbox)."""

    def reading(self, device: str, ts_ms: int, values: dict[str, Scalar], quality: dict[str, Quality]) -> None: ...

    def event(self, device: str, type_: str, data: dict[str, object]) -> None: ...


class PollGroup(Protocol):
    """A set of points read together every ``period_s``."""

    @property
    def name(self) -> str: ...

    @property
    def period_s(self) -> float: ...


class Link(Protocol):
    """The bus a device is on, as far as the schedule needs it (for its log lines and events)."""

    @property
    def key(self) -> str: ...


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


G = TypeVar("G", bound=PollGroup)


class PolledDevice(abc.ABC, Generic[G]):
    """One device polled on a shared bus: its groups' schedules and its online state."""

    task_prefix = "poll"

    def __init__(self, device_id: str, link: Link, sink: ReadingSink, metrics: PollMetrics, *,
                 offline_after: int, backoff_max_s: float, rng: random.Random | None) -> None:
        self.id = device_id
        self.sink = sink
        self.metrics = metrics
        self.offline_after = offline_after
        self.online: bool | None = None  # unknown until the first poll
        self.failures = 0
        self.backoff = Backoff(initial=1.0, cap=max(1.0, backoff_max_s), rng=rng or _RNG)
        self.retry_at = 0.0
        self.last_error = ""
        self.stopped = False
        self.groups: list[G] = []
        self._link = link

    @abc.abstractmethod
    async def poll(self, group: G) -> None:
        """Read one group once and deliver it (``_succeeded`` / ``_failed`` decide the state)."""

    @abc.abstractmethod
    def address_fields(self) -> dict[str, object]:
        """How the device is addressed on its bus, for events (``{"unit": 3}``, ``{"address": …}``)."""

    @property
    def where(self) -> str:
        what = ", ".join(f"{k} {v}" for k, v in self.address_fields().items())
        return f"{what} on {self._link.key}"

    # ------------------------------------------------------------------ scheduling
    async def run(self, phase: float) -> None:
        """Poll every group forever; ``phase`` ∈ [0, 1) spreads devices across each period."""
        async with asyncio.TaskGroup() as tg:
            for group in self.groups:
                tg.create_task(self._loop(group, phase), name=f"{self.task_prefix}-{self.id}-{group.name}")

    async def _loop(self, group: G, phase: float) -> None:
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

    # ------------------------------------------------------------------ online state
    def _failed(self, ts: int, values: dict[str, Scalar], quality: dict[str, Quality]) -> None:
        """A poll in which nothing answered: offline after ``offline_after`` of them in a row."""
        self.metrics.poll_errors += 1
        self.failures += 1
        if self.online is not False and self.failures >= self.offline_after:
            self.online = False
            log.warning("%s (%s) is offline: %s", self.id, self.where, self.last_error)
            self.sink.event(self.id, "device_offline", {"reason": self.last_error, "link": self._link.key,
                                                        **self.address_fields(), "failures": self.failures})
            self.sink.reading(self.id, ts, dict.fromkeys(values), dict.fromkeys(quality, Quality.OFFLINE))
        elif self.online is not False:
            self.sink.reading(self.id, ts, values, quality)
        if self.online is False:
            self.retry_at = time.monotonic() + self.backoff.next_delay()

    def _succeeded(self) -> None:
        if self.online is False:
            log.info("%s (%s) is back online after %d failed polls", self.id, self.where, self.failures)
            self.sink.event(self.id, "device_online", {"after_failures": self.failures, "link": self._link.key})
        elif self.online is None:
            self.sink.event(self.id, "device_online", {"link": self._link.key, **self.address_fields()})
        self.online = True
        self.failures = 0
        self.backoff.reset()
        self.retry_at = 0.0
