"""The agent's serial meter buses: built from the config's ``protocol: dlt645 | cjt188`` links.

Kept apart from the agent so the agent only starts, stops and reports them. Meters on a bus are
phase-spread over each period like Modbus devices on a link, so the bus sees a steady trickle of
exchanges instead of a burst at every period boundary.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from device_profiles import Profile
from edge.config import LinkConfig
from edge.errors import EdgeError
from edge.metrics import PollMetrics
from edge.polling import ReadingSink
from edge.serialbus.link import MeterLink
from edge.serialbus.poller import MeterDevice


class MeterBuses:
    """Every meter bus of an agent and the meters on them."""

    def __init__(self, links: list[LinkConfig], *, profile: Callable[[str], Profile],
                 register: Callable[[str, Profile, bool], None], sink: ReadingSink, metrics: PollMetrics,
                 clock: Callable[[], int]) -> None:
        self.links: dict[str, MeterLink] = {}
        self.meters: dict[str, MeterDevice] = {}
        for index, link_cfg in enumerate(links):
            enabled = [d for d in link_cfg.devices if d.enabled]
            if link_cfg.protocol == "modbus" or not enabled:
                continue
            link = MeterLink(link_cfg, metrics)
            self.links[link.key] = link
            for dev_cfg in enabled:
                prof = profile(dev_cfg.profile)
                if prof.transport != link_cfg.protocol:
                    raise EdgeError(f"links.{index}: device {dev_cfg.id} has the {prof.transport} profile "
                                    f"{prof.id!r} on a {link_cfg.protocol} bus")
                register(dev_cfg.id, prof, dev_cfg.report_by_exception)
                self.meters[dev_cfg.id] = MeterDevice(
                    dev_cfg, prof, link, sink, metrics, clock=clock, offline_after=link_cfg.offline_after,
                    backoff_max_s=link_cfg.backoff_max_s)

    def start(self, tg: asyncio.TaskGroup, link_offset: int = 0, link_total: int = 1) -> list[asyncio.Task[None]]:
        """One task per meter, phase-spread on its bus (and buses interleaved with the other links)."""
        tasks = []
        total = max(1, link_total)
        for link_index, link in enumerate(self.links.values(), start=link_offset):
            on_link = [m for m in self.meters.values() if m.link is link]
            for index, meter in enumerate(on_link):
                phase = (index + link_index / total) / len(on_link)
                tasks.append(tg.create_task(meter.run(phase), name=f"meter-{meter.id}"))
        return tasks

    def stop(self) -> None:
        for meter in self.meters.values():
            meter.stopped = True

    async def close(self) -> None:
        for link in self.links.values():
            await link.close()

    @property
    def ids(self) -> set[str]:
        """The meters' device ids (read-only: commands to them are refused as not writable)."""
        return set(self.meters)

    @property
    def online(self) -> int:
        return sum(1 for m in self.meters.values() if m.online)

    @property
    def offline(self) -> int:
        return sum(1 for m in self.meters.values() if m.online is False)

    def stats(self) -> dict[str, Any]:
        return {key: {**link.stats(), "meters": sum(1 for m in self.meters.values() if m.link is link)}
                for key, link in self.links.items()}
