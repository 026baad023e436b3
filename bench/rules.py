"""Benchmark ``rules``: cost of the shipped rule sets on the edge's load.

The edge evaluates every polled reading of ~500 devices at a 1 s period on one core next to its
polling, so the engine must use a small share of a core. Value streams are recorded once from
the simulators' device physics (no servers: this measures the engine alone) and replayed for 500
devices with per-point qualities, as the agent passes them. Baseline in the same run: the cost of
merely walking the same readings (dict copy per reading), so the engine's own share is visible.

Keys: ``devices``, ``rules``, ``readings``, ``points``, ``readings_per_s``, ``points_per_s``,
``us_per_reading``, ``baseline_us_per_reading``, ``tick_us_per_device``, ``core_share_500_at_1hz``
(fraction of one core used by 500 devices polled once a second), ``snapshot_ms``, ``snapshot_kb``,
``alarms`` (transitions seen; the replay is normal operation, so ideally 0).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson

from device_profiles import builtin_profiles
from guanjia.core.wire import Quality
from rules import RuleEngine, builtin_rulesets

PROFILES = {"elevator": "elevator-gbt24476", "pump": "vfd-pump", "meter": "eastron-sdm630", "gate": "access-gate"}
T0_S = 1_749_452_400.0  # a Monday, 08:20 China time: traffic in every kind


def _record(seconds: int, per_kind: int) -> dict[str, list[dict[str, Any]]]:
    from simulators.physics import model_for

    profiles = builtin_profiles()
    streams: dict[str, list[dict[str, Any]]] = {}
    for kind, pid in PROFILES.items():
        for n in range(per_kind):
            model = model_for(f"{kind}-{n}", profiles[pid], np.random.default_rng(n), T0_S)
            frames = []
            for s in range(seconds):
                model.advance_to(T0_S + s + 1)
                frames.append(model.values())
            streams[f"{kind}:{n}"] = frames
    return streams


def run(quick: bool) -> dict[str, float | int | bool]:
    devices = 500
    seconds = 20 if quick else 60
    streams = _record(seconds, 5)
    keys = sorted(streams)
    fleet = [(f"dev-{i}", keys[i % len(keys)]) for i in range(devices)]
    kinds = {k: k.split(":")[0] for k in keys}
    ruleset = builtin_rulesets()
    engine = RuleEngine(ruleset)
    t0_ms = int(T0_S * 1000)
    for device, key in fleet:
        engine.watch(device, kinds[key], t0_ms, profile=PROFILES[kinds[key]])
    qualities = {key: dict.fromkeys(streams[key][0], Quality.GOOD) for key in keys}

    readings = points = alarms = 0
    engine_s = tick_s = base_s = 0.0
    for second in range(seconds):
        ts = t0_ms + (second + 1) * 1000
        start = time.perf_counter()
        for _device, key in fleet:
            dict(streams[key][second])
        base_s += time.perf_counter() - start
        start = time.perf_counter()
        for device, key in fleet:
            values = streams[key][second]
            alarms += len(engine.process(device, kinds[key], ts, values, q=qualities[key],
                                         profile=PROFILES[kinds[key]]))
            readings += 1
            points += len(values)
        mid = time.perf_counter()
        alarms += len(engine.tick(ts))
        end = time.perf_counter()
        engine_s += mid - start
        tick_s += end - mid

    start = time.perf_counter()
    blob = orjson.dumps(engine.snapshot())
    snapshot_s = time.perf_counter() - start
    return {
        "devices": devices,
        "rules": len(ruleset),
        "readings": readings,
        "points": points,
        "readings_per_s": round(readings / engine_s),
        "points_per_s": round(points / engine_s),
        "us_per_reading": round(engine_s / readings * 1e6, 2),
        "baseline_us_per_reading": round(base_s / readings * 1e6, 2),
        "tick_us_per_device": round(tick_s / seconds / devices * 1e6, 2),
        "core_share_500_at_1hz": round((engine_s + tick_s) / seconds, 4),
        "snapshot_ms": round(snapshot_s * 1000, 1),
        "snapshot_kb": round(len(blob) / 1024),
        "alarms": alarms,
    }
