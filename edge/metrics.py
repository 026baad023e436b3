"""In-process metrics: plain counters and a latency histogram, read by ``Agent.health()``.

The agent reports its health in the MQTT heartbeat rather than exposing a scrape endpoint: a
plant-room box sits behind NAT, and the cloud already receives its status topic. So metrics are
cheap Python objects (no registry, no locks — everything runs on one event loop) that the
heartbeat serialises.
"""

from __future__ import annotations

import bisect
from collections import deque
from dataclasses import dataclass, field

# bucket upper bounds in milliseconds (last bucket is +inf)
_BOUNDS_MS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)


@dataclass(slots=True)
class Histogram:
    """Fixed buckets for the long-run picture plus a bounded window of recent samples for exact
    percentiles (the heartbeat and the bench want p50/p99 of the last few thousand cycles)."""

    window: int = 10_000
    counts: list[int] = field(default_factory=lambda: [0] * (len(_BOUNDS_MS) + 1))
    recent: deque[float] = field(default_factory=deque)
    total: int = 0
    maximum: float = 0.0

    def observe(self, value_ms: float) -> None:
        self.counts[bisect.bisect_left(_BOUNDS_MS, value_ms)] += 1
        self.total += 1
        self.maximum = max(self.maximum, value_ms)
        self.recent.append(value_ms)
        if len(self.recent) > self.window:
            self.recent.popleft()

    def percentile(self, q: float, ordered: list[float] | None = None) -> float:
        ordered = sorted(self.recent) if ordered is None else ordered
        if not ordered:
            return 0.0
        index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
        return ordered[index]

    def reset_recent(self) -> None:
        self.recent.clear()

    def summary(self) -> dict[str, float]:
        ordered = sorted(self.recent)
        return {
            "count": self.total,
            "p50_ms": round(self.percentile(50, ordered), 2),
            "p99_ms": round(self.percentile(99, ordered), 2),
            "max_ms": round(self.maximum, 2),
        }

    def buckets(self) -> dict[str, int]:
        labels = [f"le_{b}" for b in _BOUNDS_MS] + ["le_inf"]
        return dict(zip(labels, self.counts, strict=True))


@dataclass(slots=True)
class PollMetrics:
    """Acquisition figures shared by every poller of one agent."""

    requests: int = 0
    request_errors: int = 0
    polls: int = 0
    poll_errors: int = 0
    overruns: int = 0
    readings: int = 0
    suppressed: int = 0  # values held back by report-by-exception
    lateness: Histogram = field(default_factory=Histogram)
    request_time: Histogram = field(default_factory=Histogram)

    def summary(self) -> dict[str, object]:
        return {
            "requests": self.requests,
            "request_errors": self.request_errors,
            "polls": self.polls,
            "poll_errors": self.poll_errors,
            "overruns": self.overruns,
            "readings": self.readings,
            "suppressed_values": self.suppressed,
            "lateness": self.lateness.summary(),
            "lateness_buckets": self.lateness.buckets(),
            "request_time": self.request_time.summary(),
        }
