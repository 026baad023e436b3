"""Condition evaluators: one small class per condition type, state kept outside the class.

An evaluator is compiled once per rule and shared by every device the rule applies to; the
per-device state is a small ``__slots__`` object created by :meth:`new`, so a rule costs a few
attribute reads per reading and the whole engine state can be dumped to JSON (:meth:`dump`,
:meth:`load`) for a restart. ``update`` returns ``(signal, value)`` where ``signal`` is ``True``
(condition holds), ``False`` (it does not) or ``None`` (cannot tell: a value is missing); the
alarm state machine in :mod:`rules.engine` adds ``for``/``clear_for``/``hold`` on top.

Windows (rate, counter increase) are kept as at most ~17 time buckets, not raw samples, so memory
per device is bounded whatever the poll rate, and each update is O(1) amortised.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

from rules.expr import Values, compile_number, compile_predicate, compile_value
from rules.model import PER_MS, Baseline, Count, Offline, Rate, Stuck, Threshold

BUCKETS: Final = 16
Signal = tuple[bool | None, Any]
_UNKNOWN: Final[Signal] = (None, None)


class Condition:
    """Base: a condition that only changes on readings and has no time-driven part."""

    timed = False
    """True when time passing alone can change the signal (``tick`` must be called)."""

    def new(self, now: int) -> Any:
        return None

    def update(self, st: Any, ts: int, values: Values) -> Signal:
        raise NotImplementedError

    def tick(self, st: Any, now: int) -> bool | None:
        return None

    def tick_value(self, st: Any) -> Any:
        """The value to report after :meth:`tick` changed something (None: keep the last one)."""
        return None

    def context(self, st: Any) -> dict[str, Any]:
        return {}

    def dump(self, st: Any) -> Any:
        return None

    def load(self, data: Any, now: int) -> Any:
        return self.new(now)

    def resume(self, st: Any, downtime_ms: int) -> None:
        """The engine did not run for ``downtime_ms`` before this restored state (an agent restart)."""


def _guard(pred: Any) -> Any:
    return compile_predicate(pred) if pred is not None else None


# --------------------------------------------------------------------------- threshold


class _Latch:
    __slots__ = ("on",)

    def __init__(self, on: bool = False) -> None:
        self.on = on


class ThresholdCondition(Condition):
    def __init__(self, spec: Threshold) -> None:
        self.get = compile_number(spec.metric)
        self.guard = _guard(spec.while_)
        self.upward = spec.above is not None
        self.trigger = spec.trigger
        self.clear = spec.clear_level
        self._ctx = {"threshold": self.trigger, "clear_level": self.clear}

    def new(self, now: int) -> _Latch:
        return _Latch()

    def update(self, st: _Latch, ts: int, values: Values) -> Signal:
        if self.guard is not None:
            ok = self.guard(values)
            if ok is None:
                return _UNKNOWN
            if not ok:
                st.on = False
                return False, self.get(values)
        v = self.get(values)
        if v is None:
            return _UNKNOWN
        if self.upward:
            if st.on:
                if v <= self.clear:
                    st.on = False
            elif v > self.trigger:
                st.on = True
        elif st.on:
            if v >= self.clear:
                st.on = False
        elif v < self.trigger:
            st.on = True
        return st.on, v

    def context(self, st: _Latch) -> dict[str, Any]:
        return self._ctx

    def dump(self, st: _Latch) -> Any:
        return st.on

    def load(self, data: Any, now: int) -> _Latch:
        return _Latch(bool(data))


# --------------------------------------------------------------------------- state (predicate)


class StateCondition(Condition):
    def __init__(self, pred: Any) -> None:
        self.pred = compile_predicate(pred)
        self.value = _first_metric_value(pred)

    def update(self, st: Any, ts: int, values: Values) -> Signal:
        return self.pred(values), self.value(values)


def _first_metric_value(pred: Any) -> Any:
    """The value an alarm from a state rule reports by default: its first tested metric."""
    node = pred
    while True:
        if hasattr(node, "all"):
            node = node.all[0]
        elif hasattr(node, "any"):
            node = node.any[0]
        elif hasattr(node, "not_"):
            node = node.not_
        else:
            return compile_value(node.metric)


# --------------------------------------------------------------------------- rate of change


class _Window:
    """Time buckets ``[start, sum_value, count, sum_dt]`` over a sliding window."""

    __slots__ = ("buckets", "last")

    def __init__(self) -> None:
        self.buckets: deque[list[float]] = deque()
        self.last: float | None = None


class RateCondition(Condition):
    def __init__(self, spec: Rate) -> None:
        self.get = compile_number(spec.metric)
        self.guard = _guard(spec.while_)
        self.window = spec.window
        self.width = max(1, spec.window // BUCKETS)
        self.min_span = spec.min_span if spec.min_span is not None else spec.window // 2
        self.per = PER_MS[spec.per]
        self.above = spec.above
        self.below = spec.below
        self._ctx = {
            "window": spec.window // 1000,
            "per": spec.per,
            "threshold": spec.above if spec.above is not None else spec.below,
        }

    def new(self, now: int) -> _Window:
        return _Window()

    def update(self, st: _Window, ts: int, values: Values) -> Signal:
        if self.guard is not None:
            ok = self.guard(values)
            if ok is None:
                return _UNKNOWN
            if not ok:
                st.buckets.clear()
                st.last = None
                return False, None
        v = self.get(values)
        if v is None:
            return _UNKNOWN
        b = st.buckets
        if b and ts < b[-1][0] + self.width:
            cur = b[-1]
            cur[1] += v
            cur[2] += 1
            cur[3] += ts - cur[0]
        else:
            b.append([ts, v, 1, 0])
        cutoff = ts - self.window
        while b[0][0] < cutoff:
            b.popleft()
        if len(b) < 2:
            return _UNKNOWN
        first, last = b[0], b[-1]
        t0 = first[0] + first[3] / first[2]
        t1 = last[0] + last[3] / last[2]
        if t1 - t0 < self.min_span:
            return _UNKNOWN
        rate = (last[1] / last[2] - first[1] / first[2]) / (t1 - t0) * self.per
        st.last = rate
        hit = (self.above is not None and rate > self.above) or (self.below is not None and rate < self.below)
        return hit, rate

    def context(self, st: _Window) -> dict[str, Any]:
        return {**self._ctx, "rate": st.last}

    def dump(self, st: _Window) -> Any:
        return {"b": [list(x) for x in st.buckets], "r": st.last}

    def load(self, data: Any, now: int) -> _Window:
        st = _Window()
        if isinstance(data, dict):
            st.buckets.extend([float(x) for x in item] for item in data.get("b", []))
            st.last = data.get("r")
        return st


# --------------------------------------------------------------------------- stuck value


class _Stuck:
    __slots__ = ("last", "since")

    def __init__(self, last: Any = None, since: int | None = None) -> None:
        self.last = last
        self.since = since


class StuckCondition(Condition):
    timed = True

    def __init__(self, spec: Stuck) -> None:
        self.get = compile_value(spec.metric)
        self.guard = _guard(spec.while_)
        self.duration = spec.unchanged_for
        self.tolerance = spec.tolerance

    def new(self, now: int) -> _Stuck:
        return _Stuck()

    def update(self, st: _Stuck, ts: int, values: Values) -> Signal:
        if self.guard is not None:
            ok = self.guard(values)
            if ok is None:
                return _UNKNOWN
            if not ok:
                st.since = None
                st.last = None
                return False, self.get(values)
        v = self.get(values)
        if v is None:
            return _UNKNOWN
        if st.since is None or self._changed(v, st.last):
            st.last = v
            st.since = ts
        return ts - st.since >= self.duration, v

    def _changed(self, v: Any, last: Any) -> bool:
        if isinstance(v, str) or isinstance(last, str) or last is None:
            return bool(v != last)
        return abs(float(v) - float(last)) > self.tolerance

    def tick(self, st: _Stuck, now: int) -> bool | None:
        if st.since is None:
            return None
        return now - st.since >= self.duration

    def context(self, st: _Stuck) -> dict[str, Any]:
        return {"unchanged_for": self.duration // 1000, "stuck_value": st.last}

    def dump(self, st: _Stuck) -> Any:
        return [st.last, st.since]

    def load(self, data: Any, now: int) -> _Stuck:
        if isinstance(data, list) and len(data) == 2:
            return _Stuck(data[0], None if data[1] is None else int(data[1]))
        return _Stuck()


# --------------------------------------------------------------------------- counts and patterns


class _Edges:
    __slots__ = ("prev", "times")

    def __init__(self, size: int) -> None:
        self.prev: bool | None = None
        self.times: deque[int] = deque(maxlen=size)


class EdgeCountCondition(Condition):
    """N rising edges of a predicate within a window: keeps only the last N edge times."""

    timed = True

    def __init__(self, spec: Count) -> None:
        assert spec.edges is not None
        self.pred = compile_predicate(spec.edges)
        self.n = int(spec.at_least)
        self.within = spec.within

    def new(self, now: int) -> _Edges:
        return _Edges(self.n)

    def update(self, st: _Edges, ts: int, values: Values) -> Signal:
        p = self.pred(values)
        if p is None:
            return _UNKNOWN
        if p and st.prev is False:
            st.times.append(ts)
        st.prev = p
        return self._judge(st, ts)

    def _judge(self, st: _Edges, now: int) -> Signal:
        times = st.times
        hit = len(times) == self.n and now - times[0] <= self.within
        return hit, self._count(st, now)

    def _count(self, st: _Edges, now: int) -> int:
        n = 0
        for t in reversed(st.times):
            if now - t > self.within:
                break
            n += 1
        return n

    def tick(self, st: _Edges, now: int) -> bool | None:
        return self._judge(st, now)[0]

    def context(self, st: _Edges) -> dict[str, Any]:
        return {"at_least": self.n, "within": self.within // 1000, "count": len(st.times)}

    def dump(self, st: _Edges) -> Any:
        return [st.prev, list(st.times)]

    def load(self, data: Any, now: int) -> _Edges:
        st = _Edges(self.n)
        if isinstance(data, list) and len(data) == 2:
            st.prev = data[0]
            st.times.extend(int(t) for t in data[1][-self.n :])
        return st


class _Increase:
    __slots__ = ("buckets", "prev", "total")

    def __init__(self) -> None:
        self.buckets: deque[list[float]] = deque()
        self.prev: float | None = None
        self.total = 0.0


class IncreaseCountCondition(Condition):
    """A counter grew by at least N within a window (a drop to a lower value is a reset: it counts nothing)."""

    timed = True

    def __init__(self, spec: Count) -> None:
        assert spec.increase is not None
        self.get = compile_number(spec.increase)
        self.at_least = spec.at_least
        self.within = spec.within
        self.width = max(1, spec.within // BUCKETS)

    def new(self, now: int) -> _Increase:
        return _Increase()

    def update(self, st: _Increase, ts: int, values: Values) -> Signal:
        v = self.get(values)
        if v is None:
            return _UNKNOWN
        prev, st.prev = st.prev, v
        # a drop is a reset (a power cycle, a replaced board or simulator): what happened across it is
        # unknown, so it counts nothing — counting the new value "from zero" turned a board that comes
        # back with its lifetime count (900,000 door cycles) into 900,000 cycles in two minutes
        delta = 0.0 if prev is None or v < prev else v - prev
        if delta:
            b = st.buckets
            if b and ts < b[-1][0] + self.width:
                b[-1][1] += delta
            else:
                b.append([ts, delta])
            st.total += delta
        self._evict(st, ts)
        return st.total >= self.at_least, st.total

    def _evict(self, st: _Increase, now: int) -> None:
        b = st.buckets
        cutoff = now - self.within
        while b and b[0][0] < cutoff:
            st.total -= b.popleft()[1]
        if not b:
            st.total = 0.0

    def tick(self, st: _Increase, now: int) -> bool | None:
        self._evict(st, now)
        return st.total >= self.at_least

    def context(self, st: _Increase) -> dict[str, Any]:
        return {"at_least": self.at_least, "within": self.within // 1000, "count": st.total}

    def dump(self, st: _Increase) -> Any:
        return {"b": [list(x) for x in st.buckets], "p": st.prev, "t": st.total}

    def load(self, data: Any, now: int) -> _Increase:
        st = _Increase()
        if isinstance(data, dict):
            st.buckets.extend([float(x) for x in item] for item in data.get("b", []))
            st.prev = data.get("p")
            st.total = float(data.get("t", 0.0))
        return st


# --------------------------------------------------------------------------- offline / heartbeat


class _Seen:
    __slots__ = ("flagged", "last")

    def __init__(self, last: int | None, flagged: bool = False) -> None:
        self.last = last
        self.flagged = flagged


class OfflineCondition(Condition):
    """Fed the raw reading (not the merged view) and the reading's reachability, by the engine."""

    timed = True

    def __init__(self, spec: Offline) -> None:
        self.after = spec.after
        self.metric = spec.metric
        self.on_quality = spec.on_quality

    def new(self, now: int) -> _Seen:
        return _Seen(now)

    def reading(self, st: _Seen, ts: int, raw: Mapping[str, Any], unreachable: bool, offline: bool) -> Signal:
        if unreachable:
            if offline and self.on_quality:
                # the agent says it is offline: raise now, and say how long it has been silent
                # (unknown, shown as n/a, only for a device never heard from)
                st.flagged = True
                return True, self.silent_s(st, ts)
            return self.tick(st, ts), None
        if self.metric is None or self.metric in raw:
            st.flagged = False
            if st.last is None or ts > st.last:
                st.last = ts
            return False, 0
        return self.tick(st, ts), None

    def update(self, st: _Seen, ts: int, values: Values) -> Signal:  # pragma: no cover - engine uses reading()
        return self.reading(st, ts, values, False, False)

    def tick(self, st: _Seen, now: int) -> bool | None:
        if st.flagged:
            return True
        if st.last is None:
            return None
        return now - st.last >= self.after

    def silent_s(self, st: _Seen, now: int) -> float | None:
        return None if st.last is None else max(0, now - st.last) / 1000

    def context(self, st: _Seen) -> dict[str, Any]:
        return {"after": self.after // 1000, "last_seen": st.last}

    def dump(self, st: _Seen) -> Any:
        return [st.last, st.flagged]

    def load(self, data: Any, now: int) -> _Seen:
        if isinstance(data, list) and len(data) == 2:
            return _Seen(None if data[0] is None else int(data[0]), bool(data[1]))
        return _Seen(now)

    def resume(self, st: _Seen, downtime_ms: int) -> None:
        """Silence while the agent was down is not the device's: the silence measured before the
        stop carries on from where it was (a device already silent past ``after`` stays raised)."""
        if st.last is not None and not st.flagged:
            st.last += downtime_ms


# --------------------------------------------------------------------------- learned baseline

HOUR_MS: Final = 3_600_000
GRACE_MS: Final = 60_000
"""How long after an hour ends ``tick`` waits for its late readings before judging it."""


class _Base:
    __slots__ = ("agg", "base", "buckets", "dev", "first", "hour", "last", "n", "partial", "prev_end", "sig", "total")

    def __init__(self) -> None:
        self.hour: int | None = None
        self.partial = False
        self.total = 0.0
        self.n = 0
        self.first: float | None = None
        self.last: float | None = None
        self.prev_end: float | None = None
        self.buckets: dict[int, list[float]] = {}
        self.sig: bool | None = None
        self.agg: float | None = None
        self.base: float | None = None
        self.dev: float | None = None


class BaselineCondition(Condition):
    """Per-device online baseline per hour-of-week (or hour-of-day) bucket.

    Judged once per hour, when the first reading of the next hour closes it (or ``tick`` once the
    hour is over by ``GRACE_MS``), against the bucket's EWMA *before* learning that hour.
    Anomalous hours are learned at a quarter of the weight, so a genuine lasting change becomes
    the new normal over weeks while a fault keeps firing.
    """

    timed = True

    def __init__(self, spec: Baseline) -> None:
        self.get = compile_number(spec.metric)
        self.guard = _guard(spec.while_)
        self.aggregate = spec.aggregate
        self.weekly = spec.bucket == "hour_of_week"
        self.single = spec.bucket == "none"
        self.above = spec.above_pct
        self.below = spec.below_pct
        self.clear_pct = spec.clear_pct
        self.min_samples = spec.min_samples
        self.alpha = spec.alpha
        self.min_delta = spec.min_delta
        self.tz = spec.tzinfo

    def new(self, now: int) -> _Base:
        return _Base()

    def bucket_of(self, hour: int) -> int:
        if self.single:
            return 0
        local = datetime.fromtimestamp(hour * 3600, UTC).astimezone(self.tz)
        return local.weekday() * 24 + local.hour if self.weekly else local.hour

    def update(self, st: _Base, ts: int, values: Values) -> Signal:
        if self.guard is not None and self.guard(values) is not True:
            return st.sig, st.agg
        v = self.get(values)
        if v is None:
            return st.sig, st.agg
        hour = ts // HOUR_MS
        if st.hour is None:
            st.hour = hour
            # an hour joined late is partial: judging or learning it would skew the bucket
            st.partial = ts - hour * HOUR_MS > HOUR_MS // 20
        elif hour > st.hour:
            if st.partial:
                self._discard(st)
            else:
                self._close(st)
            if hour != st.hour + 1:
                st.prev_end = None  # a gap: the counter's growth cannot be split between hours
            st.hour = hour
            st.partial = False
        elif hour < st.hour:
            return st.sig, st.agg
        st.total += v
        st.n += 1
        if st.first is None:
            st.first = v
        st.last = v
        return st.sig, st.agg

    def tick(self, st: _Base, now: int) -> bool | None:
        if st.hour is not None and now >= (st.hour + 1) * HOUR_MS + GRACE_MS:
            if st.partial:
                self._discard(st)
            else:
                self._close(st)
            st.hour += 1
            st.partial = False
        return st.sig

    def tick_value(self, st: _Base) -> Any:
        return st.agg

    def _discard(self, st: _Base) -> None:
        if st.last is not None:
            st.prev_end = st.last
        st.total, st.n, st.first, st.last = 0.0, 0, None, None

    def _close(self, st: _Base) -> None:
        agg = self._aggregate(st)
        if st.last is not None:
            st.prev_end = st.last
        st.total, st.n, st.first, st.last = 0.0, 0, None, None
        if agg is None or st.hour is None:
            return
        key = self.bucket_of(st.hour)
        entry = st.buckets.get(key)
        anomalous = False
        if entry is not None and entry[1] >= self.min_samples and entry[0] > 0:
            base = entry[0]
            dev_pct = (agg - base) / base * 100.0
            delta = abs(agg - base)
            anomalous = self._judge(st, dev_pct, delta)
            st.base, st.dev = base, dev_pct
        else:
            st.sig = None if st.sig is None else False
            st.base, st.dev = (entry[0] if entry else None), None
        st.agg = agg
        if entry is None:
            st.buckets[key] = [agg, 1.0]
        else:
            count = entry[1]
            weight = 1.0 / (count + 1) if count < self.min_samples else self.alpha
            if anomalous:
                weight /= 4
            entry[0] += weight * (agg - entry[0])
            entry[1] = count + 1

    def _judge(self, st: _Base, dev_pct: float, delta: float) -> bool:
        if delta < self.min_delta:
            st.sig = False
            return False
        over = self.above is not None and dev_pct > self.above
        under = self.below is not None and -dev_pct > self.below
        if over or under:
            st.sig = True
            return True
        if st.sig:
            # hysteresis: stay raised until back within clear_pct (default 2/3 of the limit)
            limit = self.above if dev_pct >= 0 else self.below
            if limit is not None:
                clear = self.clear_pct if self.clear_pct is not None else limit * 2 / 3
                if abs(dev_pct) > clear:
                    return True
        st.sig = False
        return False

    def _aggregate(self, st: _Base) -> float | None:
        if st.n == 0 or st.last is None or st.first is None:
            return None
        if self.aggregate == "mean":
            return st.total / st.n
        if self.aggregate == "sum":
            return st.total
        if self.aggregate == "last":
            return st.last
        start = st.prev_end if st.prev_end is not None and st.prev_end <= st.last else st.first
        return st.last - start

    def context(self, st: _Base) -> dict[str, Any]:
        return {
            "baseline": st.base,
            "deviation_pct": st.dev,
            "threshold": self.above if (st.dev or 0) >= 0 else self.below,
        }

    def dump(self, st: _Base) -> Any:
        return {
            "h": st.hour,
            "pa": st.partial,
            "t": st.total,
            "n": st.n,
            "f": st.first,
            "l": st.last,
            "p": st.prev_end,
            "b": {str(k): v for k, v in st.buckets.items()},
            "s": st.sig,
            "a": st.agg,
            "bs": st.base,
            "d": st.dev,
        }

    def load(self, data: Any, now: int) -> _Base:
        st = _Base()
        if isinstance(data, dict):
            st.hour, st.total, st.n = data.get("h"), float(data.get("t", 0.0)), int(data.get("n", 0))
            st.partial = bool(data.get("pa", False))
            st.first, st.last, st.prev_end = data.get("f"), data.get("l"), data.get("p")
            st.buckets = {int(k): [float(v[0]), float(v[1])] for k, v in data.get("b", {}).items()}
            st.sig, st.agg, st.base, st.dev = data.get("s"), data.get("a"), data.get("bs"), data.get("d")
        return st


def build(rule: Any) -> Condition:
    """The evaluator for ``rule``'s condition."""
    kind = rule.condition_type
    spec = rule.condition
    if kind == "threshold":
        return ThresholdCondition(spec)
    if kind == "rate":
        return RateCondition(spec)
    if kind == "stuck":
        return StuckCondition(spec)
    if kind == "count":
        return EdgeCountCondition(spec) if spec.edges is not None else IncreaseCountCondition(spec)
    if kind == "state":
        return StateCondition(spec)
    if kind == "offline":
        return OfflineCondition(spec)
    if kind == "baseline":
        return BaselineCondition(spec)
    raise AssertionError(kind)  # pragma: no cover
