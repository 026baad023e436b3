"""Property tests of the pure preparation step: any payload on any topic gives a result, never an
exception; well-formed telemetry keeps every point. (Registry lookups are a pure-logic fake.)"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cloud.ingest.prepare import Incoming, Preparer
from cloud.ingest.registry_cache import GatewayInfo
from guanjia.core import wire


class FakeCache:
    def __init__(self) -> None:
        self.metrics: dict[str, int] = {}

    async def gateway(self, community: str, gateway: str) -> GatewayInfo | None:
        return GatewayInfo(1, 1, community, gateway, False, False) if gateway == "gw" else None

    async def device_ids(self, gw: GatewayInfo, codes: set[str]) -> dict[str, int]:
        return {c: i + 1 for i, c in enumerate(sorted(codes)) if c.startswith("d")}

    async def metric_ids(self, names: set[str]) -> dict[str, int]:
        for name in names:
            self.metrics.setdefault(name, len(self.metrics) + 1)
        return {n: self.metrics[n] for n in names}


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
ids = st.from_regex(r"[a-z][a-z0-9]{0,6}", fullmatch=True)
scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
           | st.text(max_size=300))


def _run(preparer: Preparer, topic: str, payload: bytes) -> Any:
    now = int(time.time() * 1000)
    return asyncio.run(preparer.prepare(Incoming(topic, payload, 1, 1, 1, now)))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=json_values, kind=st.sampled_from(["telemetry", "alarms", "events", "status", "cmd", "x/y"]))
def test_arbitrary_json_never_raises(doc: Any, kind: str) -> None:
    try:
        payload = orjson.dumps(doc)
    except TypeError:  # integers past 64 bits
        payload = repr(doc).encode()
    result = _run(Preparer(FakeCache()), f"guanjia/v1/c/gw/{kind}", payload)  # type: ignore[arg-type]
    assert result.kind in ("telemetry", "alarms", "events", "status", "dead", "ignored")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(readings=st.lists(st.fixed_dictionaries({
    "device": st.sampled_from(["d1", "d2", "x9"]),
    "ts_offset": st.integers(-10**12, 10**12),
    "values": st.dictionaries(ids, scalars, max_size=5),
}), max_size=10))
def test_telemetry_points_are_stored_or_refused(readings: list[dict[str, Any]]) -> None:
    now = int(time.time() * 1000)
    items = [{"device": r["device"], "ts": now + r["ts_offset"], "values": r["values"]} for r in readings]
    try:
        payload = wire.encode("telemetry", gateway="gw", community="c", seq=1, sent_at=now, items=items)
    except TypeError:
        return
    result = _run(Preparer(FakeCache()), "guanjia/v1/c/gw/telemetry", payload)  # type: ignore[arg-type]
    if result.kind == "dead":
        assert result.dead
        return
    offered = sum(len(r["values"]) for r in readings)
    refused = 0
    if result.dead:
        for part in result.dead[0].detail.split(";")[0].split(", "):
            refused += int(part.split(": ")[1])
    assert result.points + refused == offered
