"""Per-meter polling on a serial bus: DL/T 645 (one data identifier or one data block per exchange)
and CJ/T 188 (one ``901F`` exchange per poll for every field).

DL/T 645 points of one standard family are read as a data block (``0201FF00``: the three phase
voltages in one exchange; :func:`device_profiles.meters.plan_reads`): on a 2400-baud bus the
exchange, not the bytes, is the cost, so the meter's fast points take five exchanges instead of
nine. A meter that refuses a block ("no such data") or answers it short has that block split
into single items for good, with a warning — like an undeclared Modbus hole.

The schedule and the online state are every polled device's (:class:`edge.polling.PolledDevice`,
shared with the Modbus units): a task per (meter, poll group), absolute due times spread by a phase
over the period, lateness recorded, overruns skipped rather than burst; ``offline_after``
unreachable polls in a row make the meter offline, and an offline meter is retried on capped
jittered backoff. A silent meter therefore costs the bus one timeout
per retry, not one per point per period: when the first identifier of a poll times out, the rest
of that poll is not asked (they get the same quality), which is what keeps its neighbours on time.
A meter that answers only noise is treated the same way (see ``_UNREACHABLE``).

Error replies become per-point quality: DL/T 645 "no such data" → ``illegal_address`` (the meter
does not have that identifier), "password wrong / not authorised" → ``illegal_function``, any
other error bit → ``device_failure``; a CJ/T 188 abnormal reply → ``device_failure`` for every
field of that reply.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from device_profiles import Point, Profile
from device_profiles.errors import CodecError
from device_profiles.meters import Dlt645Read, metering_value, plan_reads, point_di
from device_profiles.protocols import cjt188, dlt645
from edge.config import DeviceConfig
from edge.errors import EdgeError, MeterFault
from edge.metrics import PollMetrics
from edge.polling import PolledDevice, ReadingSink
from edge.serialbus.link import MeterLink
from guanjia.core.wire import Quality, Scalar

log = logging.getLogger(__name__)

_UNREACHABLE = frozenset({Quality.TIMEOUT, Quality.COMM_ERROR, Quality.DECODE_ERROR})
"""Outcomes that end a meter's poll and, when every point of a poll ends so, count towards offline.
Unlike a Modbus device, a meter whose answers never decode (after the link's retries) counts as
unreachable: on a serial bus that is a baud-rate/parity mismatch, a failing transceiver or a
second meter on the same address, and polling it at full rate would spend its neighbours' time."""


def dlt645_error_quality(error_bits: int) -> Quality:
    if error_bits & 0x02:
        return Quality.ILLEGAL_ADDRESS
    if error_bits & 0x04:
        return Quality.ILLEGAL_FUNCTION
    return Quality.DEVICE_FAILURE


@dataclass(slots=True)
class MeterGroup:
    name: str
    period_s: float
    points: list[Point]
    reads: list[Dlt645Read] = field(default_factory=list)
    """DL/T 645: the exchanges of one poll (data blocks where the meter serves them)."""


class MeterDevice(PolledDevice[MeterGroup]):
    """One meter on a bus: its poll groups, schedule and online state."""

    task_prefix = "meter"

    def __init__(self, config: DeviceConfig, profile: Profile, link: MeterLink, sink: ReadingSink,
                 metrics: PollMetrics, *, clock: Callable[[], int], offline_after: int = 3,
                 backoff_max_s: float = 60.0, rng: random.Random | None = None) -> None:
        if config.address is None:
            raise EdgeError(f"{config.id}: a meter needs an address")
        super().__init__(config.id, link, sink, metrics, offline_after=offline_after, backoff_max_s=backoff_max_s,
                         rng=rng)
        self.config = config
        self.profile = profile
        self.protocol = profile.transport
        self.address = config.address
        self.link = link
        self.clock = clock
        self.timeout_s = config.timeout_s
        self.retries = config.retries
        self._ser = 0
        names = sorted({p.poll_group for p in profile.points})
        for name in names:
            points = [p for p in profile.points if p.poll_group == name]
            period = config.period_s or config.poll_groups.get(name) or profile.poll_groups.get(name) or 60.0
            reads = plan_reads(points) if self.protocol == "dlt645" else []
            self.groups.append(MeterGroup(name, period, points, reads))

    @property
    def request_count(self) -> int:
        """Exchanges one round of every group costs."""
        if self.protocol == "cjt188":
            return len(self.groups)
        return sum(len(g.reads) for g in self.groups)

    # ------------------------------------------------------------------ exchanges
    async def read_di(self, di: int) -> bytes:
        """Read one DL/T 645 identifier; the value bytes, or :class:`MeterFault`."""
        request = dlt645.encode_frame(dlt645.read_request(self.address, di))

        def accept(raw: bytes) -> bytes:
            frame = dlt645.decode_frame(raw)
            if frame.address != self.address:
                raise CodecError(f"reply from {frame.address}, asked {self.address}")
            if not frame.is_reply or frame.function != dlt645.READ_DATA:
                raise CodecError(f"control code 0x{frame.control:02X} does not answer a read")
            if frame.is_abnormal:
                bits = frame.data[0] if frame.data else 0x01
                raise MeterFault(dlt645_error_quality(bits),
                                  f"{dlt645.di_text(di)}: {', '.join(dlt645.error_names(bits, 'en')) or 'error'}")
            return dlt645.reply_value(frame, di)

        return await self.link.exchange(request, dlt645.split_frame, accept, timeout_s=self.timeout_s,
                                        retries=self.retries)

    async def read_metering(self) -> cjt188.Metering:
        """Read a CJ/T 188 meter's ``901F`` data."""
        self._ser = (self._ser + 1) & 0xFF
        ser = self._ser
        request = cjt188.encode_frame(cjt188.read_request(self.address, ser))

        def accept(raw: bytes) -> cjt188.Metering:
            frame = cjt188.decode_frame(raw)
            if frame.address != self.address:
                raise CodecError(f"reply from {frame.address}, asked {self.address}")
            if not frame.is_reply or frame.ser != ser:
                raise CodecError(f"not the reply to request {ser} (control 0x{frame.control:02X}, ser {frame.ser})")
            if frame.is_abnormal:
                raise MeterFault(Quality.DEVICE_FAILURE, f"abnormal reply, status {frame.data.hex()}")
            return cjt188.decode_metering(frame)

        return await self.link.exchange(request, cjt188.split_frame, accept, timeout_s=self.timeout_s,
                                        retries=self.retries)

    def address_fields(self) -> dict[str, object]:
        return {"address": self.address}

    # ------------------------------------------------------------------ one poll
    async def poll(self, group: MeterGroup) -> None:
        ts = self.clock()
        values: dict[str, Scalar] = {}
        quality: dict[str, Quality] = {}
        unreachable = False
        if self.protocol == "cjt188":
            try:
                metering = await self.read_metering()
            except MeterFault as fault:
                self.last_error = str(fault)
                unreachable = fault.quality in _UNREACHABLE
                for point in group.points:
                    values[point.name], quality[point.name] = None, fault.quality
            else:
                for point in group.points:
                    values[point.name], quality[point.name] = metering_value(point, metering), Quality.GOOD
        else:
            unreachable = await self._poll_dlt645(group, values, quality)
        self.metrics.polls += 1
        if unreachable:
            self._failed(ts, values, quality)
            return
        if any(q is not Quality.GOOD for q in quality.values()):
            self.metrics.poll_errors += 1
        self._succeeded()
        self.sink.reading(self.id, ts, values, quality)

    async def _poll_dlt645(self, group: MeterGroup, values: dict[str, Scalar], quality: dict[str, Quality]) -> bool:
        """Read every exchange of the group; True when the meter did not answer at all."""
        reads = group.reads
        index = 0
        while index < len(reads):
            read = reads[index]
            try:
                got = read.decode(await self.read_di(read.di))
            except (MeterFault, CodecError) as exc:
                failed = exc if isinstance(exc, MeterFault) else MeterFault(Quality.DECODE_ERROR, str(exc))
                if read.is_block and (isinstance(exc, CodecError) or failed.quality is Quality.ILLEGAL_ADDRESS):
                    # this meter does not serve the block: read its items one by one from now on
                    log.warning("%s: meter %s does not serve block %s (%s); reading its %d items separately",
                                self.id, self.address, dlt645.di_text(read.di), failed, len(read.points))
                    reads[index:index + 1] = [Dlt645Read(point_di(p), ((p, 0),)) for p, _ in read.points]
                    continue
                self.last_error = f"{dlt645.di_text(read.di)}: {failed}"
                for point, _ in read.points:
                    values[point.name], quality[point.name] = None, failed.quality
                index += 1
                if failed.quality in _UNREACHABLE:
                    # not answering: the rest of this poll would only spend the neighbours' time
                    for rest in reads[index:]:
                        for point, _ in rest.points:
                            values[point.name], quality[point.name] = None, failed.quality
                    return all(q in _UNREACHABLE for q in quality.values())
                continue
            for name, value in got.items():
                values[name], quality[name] = value, Quality.GOOD
            index += 1
        return False
