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
    """One message prepared and finished (the worker finishes every batch before writing it)."""
    now = int(time.time() * 1000)
    prepared = asyncio.run(preparer.prepare(Incoming(topic, payload, 1, 1, 1, now)))
    preparer.finish([prepared])
    return prepared


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


def _telemetry(seq: int, values: list[dict[str, Any]], device: str = "d1") -> bytes:
    now = int(time.time() * 1000)
    return wire.encode("telemetry", gateway="gw", community="c", seq=seq, sent_at=now, incarnation="0123456789abcdef",
                       items=[{"device": device, "ts": now + i, "values": v} for i, v in enumerate(values)])


def test_a_batch_is_encoded_once_and_each_message_keeps_its_own_rows() -> None:
    """Issue 21: fast-path messages are encoded together (:meth:`Preparer.finish`); every message
    still owns exactly its rows (the writer stores only the new ones), and a value out of range in
    one message is refused in that message alone, as the per-message path refuses it."""
    preparer = Preparer(FakeCache())  # type: ignore[arg-type]
    now = int(time.time() * 1000)
    warm = asyncio.run(preparer.prepare(Incoming("guanjia/v1/c/gw/telemetry", _telemetry(
        1, [{"a": 1.0, "b": 2.0}, {"a": 1.0}]), 1, 1, 1, now)))  # learns the key sets: the general path
    assert warm.source is None
    assert warm.chunks
    payloads = [_telemetry(2, [{"a": 1.5, "b": 2.5}, {"a": 3.0}]),
                _telemetry(3, [{"a": 2e15, "b": 4.0}, {"a": 5.0}]),  # out of range: this message only
                _telemetry(4, [{"a": 6.0, "b": 7.0}] * 3, device="d2")]
    batch = [asyncio.run(preparer.prepare(Incoming("guanjia/v1/c/gw/telemetry", p, i, 1, 1, now)))
             for i, p in enumerate(payloads)]
    assert all(p.source is not None and not p.chunks for p in batch)  # columns, not rows yet
    preparer.finish(batch)
    ok, bad, three = batch
    # the same rows as each message encoded alone through the general path
    alone = Preparer(FakeCache())  # type: ignore[arg-type]
    alone.key_ids.update(preparer.key_ids)
    for p, payload in ((ok, payloads[0]), (three, payloads[2])):
        single = asyncio.run(alone.prepare(Incoming("guanjia/v1/c/gw/telemetry", payload, 9, 1, 1, now)))
        alone.finish([single])
        assert b"".join(p.chunks) == b"".join(single.chunks)
        assert p.points == single.points
        assert not p.dead
    assert bad.points == 2
    assert [d.reason for d in bad.dead] == ["value_out_of_range"]
    assert bad.dead[0].detail == "value_out_of_range: 1"
    assert (three.tmin_ms, three.tmax_ms) == (now_of(payloads[2]), now_of(payloads[2]) + 2)


def now_of(payload: bytes) -> int:
    return int(orjson.loads(payload)["readings"][0]["ts"])
