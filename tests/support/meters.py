"""Simulated serial meter buses for tests: real TCP ports in front of DL/T 645 / CJ/T 188 meters."""

from __future__ import annotations

import zlib

import numpy as np

from device_profiles import find_profile
from simulators.meterbus import Cjt188Meter, Dlt645Meter, MeterBus
from simulators.physics import model_for

T0 = 1_780_000_000.0  # a fixed simulated instant: values are reproducible


def dlt645_meter(device_id: str, address: str, now: float = T0) -> Dlt645Meter:
    profile = find_profile("dlt645-3phase")
    rng = np.random.default_rng([7, zlib.crc32(device_id.encode())])
    model = model_for(device_id, profile, rng, now, {"base_kw": 20.0})
    return Dlt645Meter(device_id, address, profile, model, now=lambda: now)


def dlt645_bus(count: int, baudrate: int = 0) -> MeterBus:
    meters = [dlt645_meter(f"m{i}", f"{i:012d}") for i in range(1, count + 1)]
    return MeterBus("dlt645", list(meters), baudrate=baudrate)


def water_meter(device_id: str = "w1", address: str = "00000000000001", now: float = T0) -> Cjt188Meter:
    return Cjt188Meter(device_id, address, find_profile("cjt188-water"), now=lambda: now)


def water_bus(*meters: Cjt188Meter) -> MeterBus:
    return MeterBus("cjt188", list(meters or (water_meter(),)))
