"""``guanjia edge probe --protocol dlt645|cjt188``: find a meter and read one identifier, showing the
bytes on the wire next to the decoded value.

Commissioning a serial meter goes wrong in three classic ways: the address on the nameplate is
misread (or the meter was re-addressed), the converter's serial settings do not match the meter
(2400 8E1 is DL/T 645's default), or the identifier means something else on this model. So the
probe first asks "who is there" with the broadcast address (only a meter alone on the bus can
answer: several answering at once collide, which the probe reports as such), then reads the
identifier and prints the request, the reply and the value decoded with the standard's format.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from device_profiles.errors import CodecError
from device_profiles.protocols import cjt188, dlt645
from edge.config import LinkConfig
from edge.errors import MeterFault
from edge.serialbus.link import MeterLink
from guanjia.core.wire import Quality


@dataclass(slots=True)
class Exchange:
    what: str
    request: bytes
    reply: bytes = b""
    error: str | None = None


@dataclass(slots=True)
class MeterProbe:
    protocol: str
    address: str | None = None
    exchanges: list[Exchange] = field(default_factory=list)
    values: list[tuple[str, str, str]] = field(default_factory=list)  # (what, value, unit)

    def as_json(self) -> dict[str, object]:
        return {
            "protocol": self.protocol, "address": self.address,
            "exchanges": [{"what": e.what, "request": e.request.hex(" "), "reply": e.reply.hex(" "),
                           "error": e.error} for e in self.exchanges],
            "values": [{"what": w, "value": v, "unit": u} for w, v, u in self.values],
        }


def link_config(protocol: str, target: str, *, baudrate: int, parity: str, timeout_s: float) -> LinkConfig:
    """``/dev/…`` is a serial port; anything else is ``HOST[:PORT]`` of a transparent converter."""
    if target.startswith("/"):
        return LinkConfig(type="rtu", protocol=protocol, serial_port=target, baudrate=baudrate,
                          parity=parity, timeout_s=timeout_s, retries=1)
    host, _, port = target.partition(":")
    return LinkConfig(type="rtu-over-tcp", protocol=protocol, host=host, port=int(port or 8899),
                      baudrate=baudrate, parity=parity, timeout_s=timeout_s, retries=1)


COLLISION_HINT = " — several meters answered at once? give --meter ADDRESS"


async def _ask(link: MeterLink, probe: MeterProbe, what: str, request: bytes, protocol: str,
               broadcast: bool = False) -> bytes | None:
    exchange = Exchange(what, request)
    probe.exchanges.append(exchange)
    split = dlt645.split_frame if protocol == "dlt645" else cjt188.split_frame
    try:
        exchange.reply = await link.exchange(request, split, lambda raw: raw)
    except MeterFault as fault:
        exchange.error = ("no answer (check address, baud rate and parity, A/B wiring)"
                          if fault.quality is Quality.TIMEOUT else str(fault))
        if broadcast and fault.quality is Quality.DECODE_ERROR:
            exchange.error += COLLISION_HINT
        return None
    return exchange.reply


async def probe_meter(config: LinkConfig, *, address: str | None = None, di: str | None = None) -> MeterProbe:
    """Find the meter (broadcast when ``address`` is None) and read ``di`` (DL/T 645; default
    forward active energy) or the metering data (CJ/T 188)."""
    protocol = config.protocol
    probe = MeterProbe(protocol)
    link = MeterLink(config)
    try:
        if protocol == "dlt645":
            await _probe_dlt645(link, probe, address, dlt645.parse_di(di or "00010000"))
        else:
            await _probe_cjt188(link, probe, address)
    finally:
        await link.close()
    return probe


async def _probe_dlt645(link: MeterLink, probe: MeterProbe, address: str | None, di: int) -> None:
    if address is None:
        raw = await _ask(link, probe, "read address (broadcast AAAAAAAAAAAA)",
                         dlt645.encode_frame(dlt645.read_address_request()), "dlt645", broadcast=True)
        if raw is None:
            return
        try:
            address = dlt645.decode_frame(raw).address
        except dlt645.FrameError as exc:
            probe.exchanges[-1].error = f"{exc}{COLLISION_HINT}"
            return
    probe.address = address
    raw = await _ask(link, probe, f"read {dlt645.di_text(di)}", dlt645.encode_frame(dlt645.read_request(address, di)),
                     "dlt645")
    if raw is None:
        return
    try:
        frame = dlt645.decode_frame(raw)
        if frame.is_abnormal:
            bits = frame.data[0] if frame.data else 0
            probe.values.append(("error reply", ", ".join(dlt645.error_names(bits) + dlt645.error_names(bits, "en")),
                                 ""))
            return
        value = dlt645.reply_value(frame, di)
        fmt = dlt645.DATA_IDS.get(di)
        probe.values.append(("value bytes (lowest first, −0x33 removed)", value.hex(" "), ""))
        if dlt645.is_block(di):
            _block_values(probe, di, value)
            return
        if fmt is None:
            probe.values.append((f"{dlt645.di_text(di)}: not in the standard table", "give bcd: in the profile", ""))
            return
        probe.values.append((f"{fmt.zh} / {fmt.en} ({fmt.pattern})", f"{dlt645.decode_value(value, fmt):g}",
                             fmt.unit or ""))
    except CodecError as exc:
        probe.exchanges[-1].error = str(exc)


def _block_values(probe: MeterProbe, di: int, value: bytes) -> None:
    """A data block's items, each decoded with its own identifier's format."""
    start = dlt645.block_start(di)
    offset = 0
    index = start
    while offset < len(value):
        item = dlt645.family(di) | index << 8
        fmt = dlt645.DATA_IDS.get(item) or dlt645.DATA_IDS.get(dlt645.family(di) | start << 8)
        if fmt is None or offset + fmt.length > len(value):
            probe.values.append((f"{dlt645.di_text(item)}…: format unknown", value[offset:].hex(" "), ""))
            return
        name = f"{dlt645.di_text(item)} {fmt.zh} / {fmt.en}" if item in dlt645.DATA_IDS else dlt645.di_text(item)
        probe.values.append((name, f"{dlt645.decode_value(value[offset:offset + fmt.length], fmt):g}", fmt.unit or ""))
        offset += fmt.length
        index += 1


async def _probe_cjt188(link: MeterLink, probe: MeterProbe, address: str | None) -> None:
    if address is None:
        raw = await _ask(link, probe, "read address (broadcast AAAAAAAAAAAAAA)",
                         cjt188.encode_frame(cjt188.read_address_request()), "cjt188", broadcast=True)
        if raw is None:
            return
        try:
            address = cjt188.decode_frame(raw).address
        except cjt188.FrameError as exc:
            probe.exchanges[-1].error = f"{exc}{COLLISION_HINT}"
            return
    probe.address = address
    raw = await _ask(link, probe, "read 901F (metering data)",
                     cjt188.encode_frame(cjt188.read_request(address, ser=1)), "cjt188")
    if raw is None:
        return
    try:
        frame = cjt188.decode_frame(raw)
        if frame.is_abnormal:
            probe.values.append(("abnormal reply, status", frame.data.hex(" "), ""))
            return
        metering = cjt188.decode_metering(frame)
    except CodecError as exc:
        probe.exchanges[-1].error = str(exc)
        return
    probe.values += [
        ("当前累积流量 / cumulative flow", f"{metering.flow_total:.2f}", "m³"),
        ("结算日累积流量 / settlement-day flow", f"{metering.flow_settlement:.2f}", "m³"),
        ("表内时钟 / meter clock", metering.clock, ""),
        ("阀门 / valve", cjt188.VALVE_STATES.get(metering.valve, str(metering.valve)), ""),
        ("电池欠压 / battery low", "是 yes" if metering.battery_low else "否 no", ""),
    ]
