"""Part 3 of ``python -m bench edge``: a DL/T 645 fleet — meters per bus, reads/s, lateness p99.

Device side (``python -m bench.edge serve-meters``, its own process): ``buses`` simulated RS-485
buses of ``per_bus`` three-phase DL/T 645 meters (:mod:`simulators.meterbus`) behind transparent
converter ports, each exchange taking the wire time of its bytes at ``baudrate`` (8E1, 11 bits per
byte) — the bus, not the CPU, is the limit, as in a plant room.

Agent side: ``guanjia edge run`` exactly as deployed, the inventory turned into ``rtu-over-tcp``
links with ``protocol: dlt645``, the built-in ``dlt645-3phase`` profile at its own periods (nine
identifiers every 15 s, nine every 300 s), report-by-exception off.

Baseline in the same run: one master reading back to back on one idle bus of the same simulator
(``bus_capacity_reads_per_s``) — what the wire allows; the fleet's ``reads_per_bus_s`` against it
is the bus utilisation, and the lateness p99 says what the queueing on a shared bus costs.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Any

BAUDRATE = 2400  # DL/T 645-2007's default rate; meters ship with it


async def serve_meters(buses: int, per_bus: int, baudrate: int, inventory: Path) -> None:
    import zlib

    import numpy as np

    from device_profiles import find_profile
    from simulators.meterbus import Dlt645Meter, MeterBus, default_address
    from simulators.physics import model_for

    profile = find_profile("dlt645-3phase")
    t0 = time.time()
    running: list[MeterBus] = []
    entries = []
    for b in range(1, buses + 1):
        meters = []
        for n in range(1, per_bus + 1):
            device_id = f"b{b}-submeter-{n}"
            model = model_for(device_id, profile, np.random.default_rng(zlib.crc32(device_id.encode())), t0,
                              {"base_kw": 5.0 + n})
            meters.append(Dlt645Meter(device_id, default_address("dlt645", n), profile, model))
        bus = MeterBus("dlt645", list(meters), baudrate=baudrate)
        await bus.start()
        running.append(bus)
        entries += [{"id": m.device_id, "profile": profile.id, "transport": "dlt645", "host": "127.0.0.1",
                     "port": bus.port, "address": m.address} for m in meters]
    tmp = inventory.with_suffix(".tmp")
    tmp.write_text(json.dumps({"devices": entries}))
    tmp.replace(inventory)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    for bus in running:
        await bus.stop()


async def bus_capacity(host: str, port: int, address: str, seconds: float) -> float:
    """Reads/s of one master reading back to back on one bus (the wire's ceiling)."""
    from device_profiles.protocols import dlt645
    from edge.config import LinkConfig
    from edge.serialbus.link import MeterLink

    link = MeterLink(LinkConfig(type="rtu-over-tcp", protocol="dlt645", host=host, port=port, timeout_s=2.0))
    request = dlt645.encode_frame(dlt645.read_request(address, 0x02010100))
    reads = 0
    started = time.monotonic()
    try:
        while time.monotonic() - started < seconds:
            await link.exchange(request, dlt645.split_frame, dlt645.decode_frame)
            reads += 1
    finally:
        await link.close()
    return reads / (time.monotonic() - started)


def agent_config(inventory: Path, broker_url: str, tmp: Path, community: str, gateway: str) -> dict[str, Any]:
    inv = json.loads(inventory.read_text())["devices"]
    links: dict[int, list[dict[str, Any]]] = {}
    for entry in inv:
        links.setdefault(entry["port"], []).append(
            {"id": entry["id"], "profile": entry["profile"], "address": entry["address"],
             "report_by_exception": False})
    return {
        "gateway": gateway, "community": community,
        "uplink": {"url": broker_url, "reconnect_initial_s": 0.2, "reconnect_max_s": 1.0, "max_inflight": 32},
        "outbox": {"path": str(tmp / "outbox-meters.db"), "flush_interval_s": 0.5, "synchronous": "full"},
        "links": [{"type": "rtu-over-tcp", "protocol": "dlt645", "host": "127.0.0.1", "port": port,
                   "baudrate": BAUDRATE, "parity": "E", "timeout_s": 1.0, "devices": devs}
                  for port, devs in sorted(links.items())],
        "rules": {"builtin": True, "state_path": str(tmp / "rules-meters.json"), "reload": False},
        "health": {"heartbeat_s": 2},
    }


def figures(h0: dict[str, Any], h1: dict[str, Any], *, buses: int, per_bus: int, capacity: float) -> dict[str, Any]:
    """The ``dlt645_*`` keys from two agent heartbeats and the measured bus capacity."""
    span = (h1["uptime_s"] - h0["uptime_s"]) or 1.0
    reads_per_s = (h1["poll"]["requests"] - h0["poll"]["requests"]) / span
    per_bus_s = reads_per_s / max(1, buses)
    return {
        "dlt645_buses": buses,
        "dlt645_meters_per_bus": per_bus,
        "dlt645_meters_online": h1["devices_online"],
        "dlt645_baudrate": BAUDRATE,
        "dlt645_reads_per_s": round(reads_per_s, 1),
        "dlt645_reads_per_bus_s": round(per_bus_s, 2),
        "dlt645_bus_capacity_reads_per_s": round(capacity, 2),
        "dlt645_bus_utilisation": round(per_bus_s / max(1e-9, capacity), 2),
        "dlt645_lateness_p99_ms": h1["poll"]["lateness"]["p99_ms"],
        "dlt645_lateness_p50_ms": h1["poll"]["lateness"]["p50_ms"],
        "dlt645_request_time_p99_ms": h1["poll"]["request_time"]["p99_ms"],
        "dlt645_poll_errors": h1["poll"]["poll_errors"],
        "dlt645_overruns": h1["poll"]["overruns"],
    }
