"""In-process metrics with Prometheus text exposition (``GET /metrics``).

Why not ``prometheus_client``: it is not a dependency yet, and what the cloud needs is small —
counters with labels, gauges read at scrape time (queue depth) and a latency summary — and has to
be cheap on the ingest hot path (one dict update per *batch*, never per point).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

Labels = tuple[tuple[str, str], ...]


def _fmt_labels(labels: Labels) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in labels)
    return "{" + inner + "}"


@dataclass(slots=True)
class Counter:
    name: str
    help: str
    values: dict[Labels, float] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        key = tuple(sorted(labels.items()))
        with self.lock:
            self.values[key] = self.values.get(key, 0.0) + amount

    def get(self, **labels: str) -> float:
        return self.values.get(tuple(sorted(labels.items())), 0.0)

    def total(self) -> float:
        return sum(self.values.values())

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        lines += [f"{self.name}{_fmt_labels(k)} {v:g}" for k, v in sorted(self.values.items())] or [f"{self.name} 0"]
        return lines


@dataclass(slots=True)
class Gauge:
    """A value set by its owner, or read from ``source`` at scrape time (e.g. a queue's size)."""

    name: str
    help: str
    value: float = 0.0
    source: Callable[[], float] | None = None

    def set(self, value: float) -> None:
        self.value = value

    def get(self) -> float:
        return float(self.source()) if self.source is not None else self.value

    def render(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} gauge", f"{self.name} {self.get():g}"]


@dataclass(slots=True)
class Summary:
    """Latency summary over a sliding window of the last ``window`` observations."""

    name: str
    help: str
    window: int = 2048
    samples: list[float] = field(default_factory=list)
    count: int = 0
    sum: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def observe(self, value: float) -> None:
        with self.lock:
            self.count += 1
            self.sum += value
            self.samples.append(value)
            if len(self.samples) > self.window:
                del self.samples[: len(self.samples) - self.window]

    def quantile(self, q: float) -> float:
        with self.lock:
            ordered = sorted(self.samples)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]

    def render(self) -> list[str]:
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} summary"]
        lines += [f'{self.name}{{quantile="{q}"}} {self.quantile(q):g}' for q in (0.5, 0.9, 0.99)]
        lines += [f"{self.name}_sum {self.sum:g}", f"{self.name}_count {self.count}"]
        return lines


@dataclass(slots=True)
class Metrics:
    """The registry of one process. Components create their metrics once, at construction."""

    items: dict[str, Counter | Gauge | Summary] = field(default_factory=dict)

    def counter(self, name: str, help: str) -> Counter:
        item = self.items.setdefault(name, Counter(name, help))
        assert isinstance(item, Counter)
        return item

    def gauge(self, name: str, help: str, source: Callable[[], float] | None = None) -> Gauge:
        item = self.items.setdefault(name, Gauge(name, help, source=source))
        assert isinstance(item, Gauge)
        if source is not None:
            item.source = source
        return item

    def summary(self, name: str, help: str) -> Summary:
        item = self.items.setdefault(name, Summary(name, help))
        assert isinstance(item, Summary)
        return item

    def render(self) -> str:
        lines: list[str] = []
        for name in sorted(self.items):
            lines += self.items[name].render()
        return "\n".join(lines) + "\n"

    def snapshot(self) -> dict[str, float]:
        """Flat totals for JSON health output and tests."""
        out: dict[str, float] = {}
        for name, item in self.items.items():
            if isinstance(item, Counter):
                out[name] = item.total()
            elif isinstance(item, Gauge):
                out[name] = item.get()
            else:
                out[name + "_count"] = float(item.count)
        return out
